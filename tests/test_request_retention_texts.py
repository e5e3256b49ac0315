"""What a long-running process keeps of the allergy and problem-list wording of answered requests.

The negation reading and the allergy rule remember readings of texts by value (a bulk export repeats
the same wordings); an allergy or a diagnosis in the prescriber's words is the patient's data as much
as an order's reason (see tests/test_request_retention.py): once a check is over, none is kept, under
a memo's key or value, folded or not."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from checker import check
from tests.conftest import live_values

DEMO = Path(__file__).resolve().parents[1] / "fhir_samples" / "demo" / "01-dupont-marie.json"
MARK = "zqxwordsofrequest"
"""Lower-case letters only: a folded copy of the text still carries it."""


def _alive_marks() -> set[str]:
    """Requests whose marked text is still referenced from a live dict (key or value), list, tuple
    or slotted object, looking into the tuples they hold (a tuple of strings is not tracked itself)."""
    found: set[str] = set()
    for v in live_values():
        if isinstance(v, str) and MARK in v:
            rest = v.split(MARK, 1)[1]
            if rest:  # not the mark itself (this module's constant)
                found.add(rest[:4])
    return found


def _request(i: int, demo: dict[str, Any]) -> dict[str, Any]:
    bundle = copy.deepcopy(demo)
    patient = next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    subject = {"reference": f"Patient/{patient}"}
    bundle["entry"] += [
        {"resource": {"resourceType": "AllergyIntolerance", "id": f"al{i}", "patient": subject,
                      "code": {"text": f"Allergie : Augmentin, {MARK}{i:04d}"}}},
        {"resource": {"resourceType": "Condition", "id": f"c{i}", "subject": subject,
                      "code": {"text": f"Ulcère gastrique ; {MARK}{i:04d}"}}},
    ]
    return bundle


def test_the_library_keeps_no_allergy_or_condition_wording_of_a_checked_request() -> None:
    demo = json.loads(DEMO.read_text(encoding="utf-8"))
    check(demo, as_of="2026-02-01")  # referentials loaded before looking
    for i in range(12):
        report = check(_request(i, demo), as_of="2026-02-01")
        assert report.findings
        assert all(f.summary and f.detail for f in report.findings)
        del report
    check(demo, as_of="2026-02-01")  # the next call of the library clears what the last one remembered
    assert _alive_marks() == set(), "allergy or condition texts of past requests kept by the process"
