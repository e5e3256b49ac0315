"""Shared pieces of the test_security_service_* files: a loopback FHIR server and request bodies."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = {"access_token": "secret-ehr-token", "token_type": "Bearer", "expires_in": 300,
         "scope": "patient/*.read", "subject": "pertinence"}


@dataclass
class Seen:
    """What the loopback server was asked: (path with query, Authorization header)."""

    requests: list[tuple[str, str | None]] = field(default_factory=list)


Answer = Callable[[str], tuple[int, dict[str, str], bytes]]


@contextmanager
def loopback_fhir(answer: Answer) -> Iterator[tuple[str, Seen]]:
    """A FHIR server on 127.0.0.1 (a free port) answering with ``answer(path)``; yields its origin
    (``http://127.0.0.1:PORT``) and the requests it saw. Stopped on exit."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.requests.append((self.path, self.headers.get("Authorization")))
            status, headers, body = answer(self.path)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def json_answer(data: Any, status: int = 200) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/fhir+json"}, json.dumps(data).encode()
