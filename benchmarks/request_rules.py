"""Per-rule CPU of CDS Hooks order-sign requests checked in process: what the service's rules cost.

    python benchmarks/request_rules.py [--requests 300] [--rules IX001,DU001,DU002,PR005,PR006] [--repo DIR]

Each request is the body ``benchmarks/service_load.py`` sends (20 active orders and one draft), read
and identified afresh (a request's lines share no objects with the last request's, so the memos
kept by object miss as they do in the service), then the chosen rules run as the service runs them:
focused on the draft, a rule only where its trigger fires for it (the engine's ``Dispatch`` when the
measured code has one, its cost printed apart; else each rule's trigger asked in its row). Twenty requests warm up, then the
heap is settled as a serving worker settles it (``settle_heap``); the words of each request are
forgotten after it. Prints the CPU milliseconds per request of each rule. ``--repo``: measure the
code of another checkout (e.g. a ``git archive`` of an earlier commit).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

_REPO = sys.argv[sys.argv.index("--repo") + 1] if "--repo" in sys.argv[:-1] else str(Path(__file__).resolve().parents[1])
sys.path.insert(0, _REPO)

from benchmarks.service_load import request_body  # noqa: E402
from checker import fhir_input  # noqa: E402
from checker.api import identify_records  # noqa: E402
from checker.memo import forget_request_words  # noqa: E402
from checker.referentials import default_referentials  # noqa: E402
from checker.registry import RunSettings, all_rules  # noqa: E402

try:  # the code measured may predate the engine's dispatch (--repo)
    from checker.registry import dispatch_of
except ImportError:
    dispatch_of = None  # type: ignore[assignment]
from checker.service.app import settle_heap  # noqa: E402

AS_OF = date(2026, 1, 15)
WARM_UP = 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--rules", default="IX001,DU001,DU002,PR005,PR006", help="comma-separated rule ids")
    ap.add_argument("--repo", default=_REPO, help="the checkout whose code is measured")
    args = ap.parse_args()
    refs = default_referentials()
    wanted = [r for r in args.rules.split(",") if r]
    rules = [r for r in all_rules() if r.id in wanted]
    for r in all_rules():
        for ref_id in r.referentials:
            if refs.has(ref_id):
                refs.get(ref_id)
    cpu = {r.id: 0.0 for r in rules}
    if dispatch_of is not None:
        cpu["(dispatch)"] = 0.0

    def one(i: int, counted: bool) -> None:
        ing = fhir_input.read(request_body(i), as_of=AS_OF)
        identify_records(ing.records, refs)
        focus = frozenset(o.ref for rec in ing.records for o in rec.medication_orders if o.draft)
        settings = RunSettings(as_of=AS_OF, jurisdiction="fr", lang="fr", severity_overrides=(), focus=focus)
        for rec in ing.records:
            shared: dict[object, object] = {}
            fire = -1
            if dispatch_of is not None:
                start = time.process_time()
                fire = dispatch_of(r.trigger(refs) for r in rules).firing_bits(rec, focus)
                if counted:
                    cpu["(dispatch)"] += time.process_time() - start
            for bit, r in enumerate(rules):
                start = time.process_time()
                if dispatch_of is not None:
                    if fire >> bit & 1:
                        r.run(rec, settings, refs, shared)
                else:
                    trigger = r.trigger(refs)
                    if trigger is None or trigger.fires(rec, focus):
                        r.run(rec, settings, refs, shared)
                if counted:
                    cpu[r.id] += time.process_time() - start
        forget_request_words()

    for i in range(WARM_UP):
        one(i, False)
    settle_heap()
    for i in range(WARM_UP, WARM_UP + args.requests):
        one(i, True)
    n = max(1, args.requests)
    print(f"{args.requests} order-sign requests (20 active orders + 1 draft), CPU ms per request:")
    for rid, spent in cpu.items():
        print(f"  {rid:6} {spent / n * 1000:7.3f}")
    print(f"  {'total':6} {sum(cpu.values()) / n * 1000:7.3f}")


if __name__ == "__main__":
    main()
