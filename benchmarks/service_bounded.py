"""Bounded cost of the CDS Hooks service: memory and work around oversized and slow requests.

Starts the app under uvicorn on 127.0.0.1 (a free port, authentication off: loopback only) in its own
process, samples that process's resident memory every 20 ms, and sends in turn:

1. the reported request: one order-sign with 4,900 draft orders (under the body and resource limits);
2. the largest request the default limits admit: 200 draft orders and 300 current orders (500 orders),
   alone, then 8 at once (the default ``max_concurrent_checks``);
3. the same with a deadline the check cannot meet (``--timeout``, default 0.5 s): the CPU time the server
   process spends in the 3 s after its 503 answer is printed (work that continued after the answer);
4. a normal request (1 draft, 20 current orders), which must answer 200.

With ``--deadline-only`` the admission limits are raised to 10,000 orders, to show what the deadline
alone bounds (the 4,900-draft request is then checked until its deadline, and stopped).

Prints status and time of each, the CPU seconds after the 503, and the peak resident memory of the
server process (target: under 1.5 GB through all of it).

    python benchmarks/service_bounded.py [--timeout 0.5] [--deadline-only]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from service_load import ACTIVE, _order, free_port  # noqa: E402


def body(drafts: int, active: int) -> dict[str, Any]:
    return {
        "hook": "order-sign", "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p1", "draftOrders": {"resourceType": "Bundle", "entry": [
            {"resource": _order(f"d{i}", ACTIVE[i % len(ACTIVE)], "draft")} for i in range(drafts)]}},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1948-05-01", "gender": "female"},
            "medications": {"resourceType": "Bundle", "type": "searchset", "entry": [
                {"resource": _order(f"a{k}", ACTIVE[(k * 7) % len(ACTIVE)], "active")} for k in range(active)]}
            if active else None,
            "conditions": None, "allergies": None, "renal": None, "weight": None, "pregnancy": None, "results": None,
        },
    }


def serve(port: int, tmp: str, timeout: float, ready: Any, admission: bool = True) -> None:
    """Child process: the app with default limits (except the deadline) on loopback."""
    import uvicorn

    from checker.service import ServiceConfig, create_app
    from checker.service.config import AuthConfig, Limits

    cfg = ServiceConfig(feedback_db=str(Path(tmp) / "feedback.sqlite3"), as_of="2026-01-15",
                        auth=AuthConfig(enabled=False),
                        limits=Limits(timeout_seconds=timeout) if admission else
                        Limits(timeout_seconds=timeout, max_draft_orders=10_000, max_orders=10_000))
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port, log_level="error",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    ready.set()
    thread.join()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=0.5, help="deadline of request 3 (s)")
    ap.add_argument("--deadline-only", action="store_true", help="raise the admission limits to 10,000 orders")
    args = ap.parse_args()
    import httpx

    port = free_port()
    tmp = tempfile.mkdtemp(prefix="pertinence-bounded-")
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    peak = [0.0]
    done = threading.Event()
    url = f"http://127.0.0.1:{port}/cds-services/order-sign"

    def start(timeout: float) -> Any:
        proc = ctx.Process(target=serve, args=(port, tmp, timeout, ready, not args.deadline_only), daemon=True)
        proc.start()
        if not ready.wait(120):
            proc.kill()
            raise SystemExit("the service did not start within 120 s")
        return proc

    def sample(pid: int) -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], rss_mb(pid))
            except OSError:
                return
            time.sleep(0.02)

    def post(client: httpx.Client, label: str, payload: dict[str, Any]) -> httpx.Response:
        t0 = time.perf_counter()
        resp = client.post(url, json=payload)
        print(f"{label:<52} HTTP {resp.status_code}  {time.perf_counter() - t0:6.2f} s")
        return resp

    # default deadline (5 s) for requests 1, 2 and 4; a second server with a short one for request 3
    proc = start(5.0)
    assert proc.pid is not None
    sampler = threading.Thread(target=sample, args=(proc.pid,), daemon=True)
    sampler.start()
    try:
        print(f"server started, resident memory {rss_mb(proc.pid):.0f} MB")
        with httpx.Client(timeout=120.0) as client:
            post(client, "1. 4,900 draft orders", body(4900, 0))
            post(client, "2. 200 drafts + 300 current orders (limits)", body(200, 300))
            t0 = time.perf_counter()
            with httpx.Client(timeout=120.0) as c8:
                import concurrent.futures

                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    codes = list(pool.map(lambda _i: c8.post(url, json=body(200, 300)).status_code, range(8)))
            print(f"{'2b. the same, 8 at once':<52} HTTP {sorted(set(codes))}  {time.perf_counter() - t0:6.2f} s")
            post(client, "4. normal: 1 draft + 20 current orders", body(1, 20))
    finally:
        done.set()
        sampler.join(timeout=2)
        proc.kill()
        proc.join()
    print(f"peak resident memory of the server process: {peak[0]:.0f} MB (target < 1536 MB)")

    ready.clear()
    proc = start(args.timeout)
    assert proc.pid is not None
    try:
        with httpx.Client(timeout=120.0) as client:
            resp = post(client, f"3. requests 2 with a {args.timeout} s deadline", body(200, 300))
            at_answer = cpu_seconds(proc.pid)
            time.sleep(3.0)
            after = cpu_seconds(proc.pid) - at_answer
            print(f"   CPU spent by the server in the 3 s after its HTTP {resp.status_code}: {after:.2f} s")
            post(client, "4. normal request after it", body(1, 20))
    finally:
        proc.kill()
        proc.join()


if __name__ == "__main__":
    main()
