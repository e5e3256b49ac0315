"""Load benchmark of the CDS Hooks service, on loopback only and bounded.

Starts the service the way production does, ``pertinence serve --workers W`` on 127.0.0.1 (a free
port) with JWT authentication on (an ES384 key made for the run, its JWKS in the configuration
file), then sends N order-sign requests, C at a time; each request carries one draft order and 20
active orders. The same number of requests goes to the app's empty endpoint (``/healthz``) under
the same concurrency. Prints p50/p99 of both and the error count, the ratio of order-sign's p99 to
the target, the number of workers, and the start-up of one worker (a fresh interpreter running the
workers' app factory, drug index from the cache; median of 3). Target (issue 17): zero errors and
p99 <= 300 ms at concurrency 50; a worker ready in <= 2 s. The load generator runs on the same
machine and takes its share of the cores.

    python benchmarks/service_load.py [--requests 1000] [--concurrency 50] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGET_P99 = 0.300
TARGET_WORKER_START = 2.0

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
            "conditions": None, "allergies": None, "renal": None, "weight": None, "pregnancy": None, "results": None,
        },
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_load(url: str, n: int, concurrency: int, make: Any) -> tuple[list[float], int]:
    """``n`` requests from ``concurrency`` clients, each on its own keep-alive connection (as an EHR's
    connection pool). The standard library's HTTP client in threads: it costs the shared cores a
    fraction of what an asyncio HTTP client does (the generator's CPU per request is printed)."""
    import http.client
    import urllib.parse

    target = urllib.parse.urlsplit(url)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    todo = iter(range(n))

    def client() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                break
            method, path, kwargs = make(i)
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=kwargs.get("content"), headers=kwargs.get("headers", {}))
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                ok = False
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                errors += not ok
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors


def write_config(tmp: Path, base: str, jwk: dict[str, Any], checks: int | None = None) -> Path:
    """The service's TOML configuration: JWT on (the run's key), a fixed day, a fresh feedback database."""
    (tmp / "jwks.json").write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")
    path = tmp / "pertinence.toml"
    path.write_text(f'[server]\nbase_url = "{base}"\nas_of = "2026-01-15"\nfeedback_db = "feedback.sqlite3"\n'
                    f'[auth]\njwks_file = "jwks.json"\nissuers = ["{ISS}"]\n'
                    + (f"[limits]\nmax_concurrent_checks = {checks}\n" if checks else ""), encoding="utf-8")
    return path


def worker_startup(config: Path, env: dict[str, str], runs: int = 3) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds from a fresh interpreter to a built, warmed-up app, as a worker does it."""
    import resource

    code = "from checker.service import app_from_env; app_from_env()"
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True,
                       env=dict(env, PERTINENCE_SERVICE_CONFIG=str(config)))
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def wait_ready(base: str, proc: subprocess.Popen[bytes], workers: int, timeout: float = 120) -> None:
    """Until every worker has logged its start-up and the service answers."""
    import httpx

    started = [0]

    def drain() -> None:  # read the server's log (also keeps its pipe from filling up)
        assert proc.stderr is not None
        for line in proc.stderr:
            started[0] += b"Application startup complete" in line

    threading.Thread(target=drain, daemon=True).start()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit(f"the service stopped (exit {proc.returncode}) before answering")
        try:
            if started[0] >= workers and httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"the service did not answer within {timeout:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--workers", type=int, default=None,
                    help="worker processes of `pertinence serve` (default: the command's default, one per core)")
    ap.add_argument("--repo", type=Path, default=REPO,
                    help="checkout whose `cli.py serve` is measured (default: this one; another for before/after)")
    ap.add_argument("--startup-runs", type=int, default=5, help="fresh worker start-ups timed (median printed)")
    ap.add_argument("--checks-per-worker", type=int, default=None,
                    help="limits.max_concurrent_checks of the service (default: the service's default)")
    args = ap.parse_args()
    n = max(1, min(args.requests, 2000))  # bounded
    conc = max(1, min(args.concurrency, 64))
    workers = max(1, min(args.workers or os.cpu_count() or 1, 16))

    from joserfc import jwt
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-384", parameters={"kid": "bench", "alg": "ES384"})
    port = free_port()
    base = f"{BASE}:{port}"
    tmp = Path(tempfile.mkdtemp(prefix="pertinence-bench-"))
    config = write_config(tmp, base, key.as_dict(private=False), args.checks_per_worker)
    repo = args.repo.resolve()
    env = dict(os.environ, PYTHONPATH=str(repo))
    # the server runs in its own processes, so the load generator does not share their interpreter lock
    t0 = time.perf_counter()
    cmd = [sys.executable, str(repo / "cli.py"), "serve", "--port", str(port), "--config", str(config)]
    if args.workers is not None:
        cmd += ["--workers", str(workers)]
    elif repo != REPO:
        workers = 1  # another checkout: its own default (one process before the option existed)
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_ready(base, proc, workers)
        startup = time.perf_counter() - t0
        run(args, n, conc, workers, base, key, jwt, startup, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    if repo != REPO:
        return  # the workers' factory is this checkout's
    walls, cpus = worker_startup(config, env, args.startup_runs)
    w = statistics.median(walls)
    print(f"one worker's start-up (fresh interpreter -> app built and warmed up, drug index from the cache): "
          f"median {w:.2f} s wall ({', '.join(f'{x:.2f}' for x in walls)}), {statistics.median(cpus):.2f} s CPU; "
          f"target <= {TARGET_WORKER_START:.0f} s: x{w / TARGET_WORKER_START:.2f}, "
          f"{'OK' if w <= TARGET_WORKER_START else 'OVER TARGET'}")


def server_cpu(pid: int) -> dict[int, float]:
    """CPU seconds used so far by each serving process (supervisor and workers); empty without psutil."""
    try:
        import psutil
    except ImportError:
        return {}
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return {p.pid: sum(p.cpu_times()[:2]) for p in procs
            if "resource_tracker" not in " ".join(p.cmdline())}  # multiprocessing's helper, not a worker


def run(args: Any, n: int, conc: int, workers: int, base: str, key: Any, jwt: Any, startup: float, pid: int) -> None:
    def token(path: str) -> str:
        now = int(time.time())
        return jwt.encode({"alg": "ES384", "typ": "JWT", "kid": "bench"},
                          {"iss": ISS, "aud": base + path, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())},
                          key, algorithms=["ES384"])

    bodies = [json.dumps(request_body(i)).encode() for i in range(n)]
    tokens = [token("/cds-services/order-sign") for _ in range(n + 4 * workers + 1)]  # signed before timing
    sign = lambda i: ("POST", "/cds-services/order-sign", {  # noqa: E731
        "content": bodies[i], "headers": {"content-type": "application/json", "authorization": f"Bearer {tokens[i]}"}})
    empty = lambda i: ("GET", "/healthz", {})  # noqa: E731

    # warm-up (the first requests of each worker fill its caches), then the measured runs
    warm = 4 * workers
    run_load(base, warm, workers, lambda i: ("POST", "/cds-services/order-sign", {
        "content": bodies[0], "headers": {"content-type": "application/json",
                                          "authorization": f"Bearer {tokens[n + i]}"}}))
    cpu: dict[str, tuple[float, float]] = {}  # per endpoint: (server, load generator) CPU seconds
    s0, c0 = server_cpu(pid), time.process_time()
    empty_lat, empty_err = run_load(base, n, conc, empty)
    s1, c1 = server_cpu(pid), time.process_time()
    sign_lat, sign_err = run_load(base, n, conc, sign)
    s2, c2 = server_cpu(pid), time.process_time()
    cpu["empty /healthz"] = (sum(s1.values()) - sum(s0.values()), c1 - c0)
    cpu["order-sign"] = (sum(s2.values()) - sum(s1.values()), c2 - c1)
    shares = sorted((s2[p] - s1.get(p, 0.0) for p in s2 if p != pid), reverse=True)
    import httpx  # one more response, to show what was measured

    sample = httpx.post(base + "/cds-services/order-sign", content=bodies[0], timeout=30,
                        headers={"content-type": "application/json", "authorization": f"Bearer {tokens[n + warm]}"})
    cards = [(c["indicator"], c["summary"]) for c in sample.json().get("cards", [])]
    print(f"pertinence serve, {workers} worker(s): answering {startup:.2f} s after launch "
          f"(supervisor checks referentials, then the workers start)")
    print(f"requests: {n} per endpoint, concurrency {conc}, 20 active orders + 1 draft per order-sign, JWT on")
    for name, lat, err in (("empty /healthz", empty_lat, empty_err), ("order-sign", sign_lat, sign_err)):
        print(f"{name:>15}: p50 {1000 * pct(lat, 0.5):7.1f} ms  p99 {1000 * pct(lat, 0.99):7.1f} ms  "
              f"mean {1000 * statistics.fmean(lat):7.1f} ms  errors {err}  CPU per request: server "
              f"{1000 * cpu[name][0] / n:5.2f} ms, load generator {1000 * cpu[name][1] / n:5.2f} ms")
    if shares and sum(shares) > 0:
        print("order-sign CPU share of each worker (connections are kept open, so this is how the "
              "supervisor's shared socket spread them): " + " / ".join(f"{100 * x / sum(shares):.0f} %" for x in shares))
    p99 = pct(sign_lat, 0.99)
    verdict = "OK" if sign_err == 0 and p99 <= TARGET_P99 else "OVER TARGET"
    print(f"order-sign p99 / target ({1000 * TARGET_P99:.0f} ms): x{p99 / TARGET_P99:.2f}; errors {sign_err}: {verdict}")
    print(f"cards per order-sign response: {len(cards)}")
    for indicator, summary in cards:
        print(f"  [{indicator}] {summary}")


if __name__ == "__main__":
    main()
