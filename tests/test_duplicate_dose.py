"""DU001 states the total daily dose of the substance taken twice, against the PR005 ceiling of
referentials/iatrogenic/patient-risks.tsv, and says when the dose cannot be computed."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from checker import check
from checker.findings import Finding

SAMPLE = Path(__file__).resolve().parents[1] / "fhir_samples" / "rules" / "DU001" / "fail-doliprane-ixprim.json"


def _du001(tmp_path: Path, edit=None, lang: str = "fr") -> Finding:  # type: ignore[no-untyped-def]
    data = json.loads(SAMPLE.read_text(encoding="utf-8"))
    if edit is not None:
        data = edit(copy.deepcopy(data))
    path = tmp_path / "case.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    found = [f for f in check([path], as_of="2026-01-15", lang=lang).findings if f.rule == "DU001"]
    assert len(found) == 1
    return found[0]


def _requests(data: dict) -> list[dict]:  # type: ignore[type-arg]
    return [e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "MedicationRequest"]


def test_total_daily_dose_is_stated_against_the_ceiling(tmp_path: Path) -> None:
    f = _du001(tmp_path)  # 3 × 1000 mg + 3 × 325 mg of paracetamol; ceiling 4 g/day (ANSM 2019)
    assert f.evidence["daily_total_mg"] == 3975 and f.evidence["daily_max_mg"] == 4000
    assert "3\u202f975 mg" in f.detail and "4\u202f000 mg" in f.detail
    en = f.worded("en")
    assert "3,975 mg" in en.detail and "4,000 mg" in en.detail
    assert "above" not in en.detail


def test_total_above_the_ceiling_says_so(tmp_path: Path) -> None:
    def more(data: dict) -> dict:  # type: ignore[type-arg]
        _requests(data)[0]["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = 4
        return data
    f = _du001(tmp_path, more, lang="en")
    assert f.evidence["daily_total_mg"] == 4975
    assert "4,975 mg" in f.detail and "above the maximum" in f.detail


def test_text_only_dosage_says_the_total_is_unknown(tmp_path: Path) -> None:
    def text_only(data: dict) -> dict:  # type: ignore[type-arg]
        _requests(data)[1]["dosageInstruction"] = [{"text": "si douleur"}]
        return data
    f = _du001(tmp_path, text_only)
    assert "daily_total_mg" not in f.evidence and f.evidence["daily_total"] == "not-computable"
    assert "n'a pas pu être calculée" in f.detail
