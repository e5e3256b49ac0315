"""Cheaper equivalents of past prescriptions: a completed or stopped line written as a princeps when a
cheaper equivalent existed is reported like a running one (a retrospective audit looks for exactly
these), with what that prescription would have saved, but it counts 0 in the yearly savings: the
running renewal carries the treatment's year. Generated over every EQ fail sample of
``fhir_samples/rules``."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from checker import check
from tests.conftest import SAMPLES

EQ_RULES = ("EQ001", "EQ002", "EQ003", "EQ005")
"""EQ004 (biosimilar at initiation) judges running lines only: an export seldom holds what came before
its oldest lines, so a past line cannot be known to be an initiation."""


def _fail_samples() -> list[Any]:
    return [pytest.param(rule, path, id=f"{rule}/{path.stem}")
            for rule in EQ_RULES for path in sorted((SAMPLES / "rules" / rule).glob("fail-*.json"))]


def _options(path: Path) -> dict[str, str]:
    exp = path.with_name(path.stem + ".expect")
    data = orjson.loads(exp.read_bytes()) if exp.is_file() else {}
    return {"as_of": data.get("as_of", "2026-01-15"), "jurisdiction": data.get("jurisdiction", "fr")}


def _ended(data: Any, status: str) -> Any:
    out = copy.deepcopy(data)
    for e in out.get("entry", []):
        r = e.get("resource", {})
        if r.get("resourceType") == "MedicationRequest" and r.get("status") in ("active", "on-hold"):
            r["status"] = status
    return out


def _found(data: Any, rule: str, path: Path) -> list[dict[str, Any]]:
    report = check(data, select=[rule], **_options(path))
    assert not report.errors
    return [f.to_dict() for f in report.findings if f.rule == rule]


@pytest.mark.parametrize("rule, path", _fail_samples())
@pytest.mark.parametrize("status", ["completed", "stopped"])
def test_a_past_prescription_keeps_its_cheaper_equivalent(rule: str, path: Path, status: str) -> None:
    data = orjson.loads(path.read_bytes())
    running = _found(data, rule, path)
    past = _found(_ended(data, status), rule, path)
    assert [f["implicated"] for f in past] == [f["implicated"] for f in running]
    for f in past:
        saving = (f.get("suggestion") or {}).get("saving") or {}
        assert saving.get("per_year_basis") in ("past", None), saving
        assert not saving.get("per_year"), saving  # stated, not counted in the yearly savings


def test_a_past_line_and_its_running_renewal_count_one_year() -> None:
    """Four completed quarterly TAHOR lines and the running one: the yearly saving is the running
    line's, not five lines' worth."""
    path = SAMPLES / "rules" / "EQ001" / "fail-tahor-20.json"
    data = orjson.loads(path.read_bytes())
    requests = [e for e in data["entry"] if e["resource"]["resourceType"] == "MedicationRequest"]
    alone = check(data, select=["EQ001"], **_options(path)).savings()
    past = []
    for n, day in enumerate(("2025-01-10", "2025-04-10", "2025-07-10", "2025-10-10")):
        e = copy.deepcopy(requests[0])
        e["resource"]["id"] = f"past-{n}"
        e["resource"]["status"] = "completed"
        e["resource"]["authoredOn"] = day
        e["fullUrl"] = f"urn:uuid:past-{n}"
        past.append(e)
    data["entry"] = data["entry"] + past
    with_past = check(data, select=["EQ001"], **_options(path)).savings()
    assert alone["total"] and with_past == alone
