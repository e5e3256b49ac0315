"""Load benchmark of the CDS Hooks service, on loopback only and bounded.

Starts the app under uvicorn on 127.0.0.1 (a free port), with JWT authentication on (an ES384 key
made for the run), then sends N order-sign requests, C at a time; each request carries one draft
order and 20 active orders. The same number of requests goes to the app's empty endpoint
(``/healthz``) under the same concurrency. Prints p50/p99 of both, their ratio, and the error
count. Target (CDS Hooks 2.0 says services should answer in about 500 ms): zero errors, p99 under
500 ms.

    python benchmarks/service_load.py [--requests 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ACTIVE = [  # a polypharmacy list of common French DCI (20 active orders)
    "AMLODIPINE 5 mg comprimé", "ATORVASTATINE 20 mg comprimé", "METFORMINE 850 mg comprimé",
    "RAMIPRIL 5 mg gélule", "BISOPROLOL 5 mg comprimé", "FUROSEMIDE 40 mg comprimé",
    "LEVOTHYROXINE 75 microgrammes comprimé", "OMEPRAZOLE 20 mg gélule", "PARACETAMOL 1 g comprimé",
    "ALLOPURINOL 100 mg comprimé", "SIMVASTATINE 20 mg comprimé", "TRAMADOL 50 mg gélule",
    "SERTRALINE 50 mg gélule", "ZOLPIDEM 10 mg comprimé", "WARFARINE 5 mg comprimé",
    "DIGOXINE 0,25 mg comprimé", "SPIRONOLACTONE 25 mg comprimé", "PREDNISOLONE 20 mg comprimé",
    "CLOPIDOGREL 75 mg comprimé", "ESCITALOPRAM 10 mg comprimé",
]
BASE = "http://127.0.0.1"
ISS = "https://ehr.bench.local"


def _order(rid: str, text: str, status: str) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
            "subject": {"reference": "Patient/p1"}, "medicationCodeableConcept": {"text": text},
            "authoredOn": "2026-01-10",
            "dosageInstruction": [{"doseQuantity": {"value": 1, "unit": "comprimé"},
                                   "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]}


def request_body(i: int) -> dict[str, Any]:
    return {
        "hook": "order-sign", "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p1",
                    "draftOrders": {"resourceType": "Bundle",
                                    "entry": [{"resource": _order(f"d{i}", "IBUPROFENE 400 mg comprimé", "draft")}]}},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1948-05-01", "gender": "female"},
            "medications": {"resourceType": "Bundle", "type": "searchset",
                            "entry": [{"resource": _order(f"a{k}", t, "active")} for k, t in enumerate(ACTIVE)]},
            "conditions": None, "allergies": None, "renal": None, "weight": None,
        },
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run_load(url: str, n: int, concurrency: int, make: Any) -> tuple[list[float], int]:
    import httpx

    latencies: list[float] = []
    errors = 0
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=concurrency)) as client:

        async def one(i: int) -> None:
            nonlocal errors
            method, path, kwargs = make(i)
            async with sem:
                t0 = time.perf_counter()
                try:
                    resp = await client.request(method, url + path, **kwargs)
                    ok = resp.status_code == 200
                except Exception:  # noqa: BLE001 - counted as an error
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        await asyncio.gather(*(one(i) for i in range(n)))
    return latencies, errors


def serve(port: int, base: str, jwk: dict[str, Any], tmp: str, ready: Any) -> None:
    """Child process: build the app (referentials loaded once) and serve it on loopback."""
    import uvicorn

    from checker.service import ServiceConfig, create_app
    from checker.service.config import AuthConfig

    cfg = ServiceConfig(base_url=base, feedback_db=str(Path(tmp) / "feedback.sqlite3"), as_of="2026-01-15",
                        auth=AuthConfig(jwks={"keys": [jwk]}, issuers=(ISS,)))
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    ready.set()
    thread.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    n = max(1, min(args.requests, 2000))  # bounded
    conc = max(1, min(args.concurrency, 64))

    from joserfc import jwt
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-384", parameters={"kid": "bench", "alg": "ES384"})
    port = free_port()
    base = f"{BASE}:{port}"
    tmp = Path(tempfile.mkdtemp(prefix="pertinence-bench-"))
    # the server runs in its own process, so the load generator does not share its interpreter lock
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=serve, args=(port, base, key.as_dict(private=False), str(tmp), ready), daemon=True)
    t0 = time.perf_counter()
    proc.start()
    if not ready.wait(timeout=120):
        proc.kill()
        sys.exit("the service did not start within 120 s")
    startup = time.perf_counter() - t0
    def token(path: str) -> str:
        now = int(time.time())
        return jwt.encode({"alg": "ES384", "typ": "JWT", "kid": "bench"},
                          {"iss": ISS, "aud": base + path, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())},
                          key, algorithms=["ES384"])

    bodies = [json.dumps(request_body(i)).encode() for i in range(n)]
    tokens = [token("/cds-services/order-sign") for _ in range(n + 5)]  # signed before timing
    sign = lambda i: ("POST", "/cds-services/order-sign", {  # noqa: E731
        "content": bodies[i], "headers": {"content-type": "application/json", "authorization": f"Bearer {tokens[i]}"}})
    empty = lambda i: ("GET", "/healthz", {})  # noqa: E731

    # warm-up (first request compiles caches), then the measured runs
    asyncio.run(run_load(base, 3, 1, lambda i: ("POST", "/cds-services/order-sign", {
        "content": bodies[0], "headers": {"content-type": "application/json", "authorization": f"Bearer {tokens[n + i]}"}})))
    empty_lat, empty_err = asyncio.run(run_load(base, n, conc, empty))
    sign_lat, sign_err = asyncio.run(run_load(base, n, conc, sign))
    import httpx  # one more response, to show what was measured

    sample = httpx.post(base + "/cds-services/order-sign", content=bodies[0], timeout=30,
                        headers={"content-type": "application/json", "authorization": f"Bearer {tokens[n + 3]}"})
    cards = [(c["indicator"], c["summary"]) for c in sample.json().get("cards", [])]
    proc.terminate()
    proc.join(timeout=10)
    print(f"service start-up in a fresh process (imports + referentials loaded once): {startup:.2f} s")
    print(f"requests: {n} per endpoint, concurrency {conc}, 20 active orders + 1 draft per order-sign")
    for name, lat, err in (("empty /healthz", empty_lat, empty_err), ("order-sign", sign_lat, sign_err)):
        print(f"{name:>15}: p50 {1000 * pct(lat, 0.5):7.1f} ms  p99 {1000 * pct(lat, 0.99):7.1f} ms  "
              f"mean {1000 * statistics.fmean(lat):7.1f} ms  errors {err}")
    print(f"ratio order-sign / empty: p50 x{pct(sign_lat, 0.5) / pct(empty_lat, 0.5):.1f}  "
          f"p99 x{pct(sign_lat, 0.99) / pct(empty_lat, 0.99):.1f}")
    verdict = "OK" if sign_err == 0 and pct(sign_lat, 0.99) < 0.5 else "OVER TARGET"
    print(f"target (0 errors, p99 < 500 ms): {verdict}")
    print(f"cards per order-sign response: {len(cards)}")
    for indicator, summary in cards:
        print(f"  [{indicator}] {summary}")


if __name__ == "__main__":
    main()
