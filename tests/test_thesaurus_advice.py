"""The entry-specific conduct of IX001 (referential ansm-thesaurus-advice): every fact is found in the
thesaurus text it was encoded from (no invented fact), every code is worded, and findings say it."""

from __future__ import annotations

import csv
import json
import random
import re
import sys
from pathlib import Path

import pytest

from checker import check
from checker.formats.catalogue import LANGS, catalogue
from checker.referentials import default_referentials
from checker.text import fold, fold_keeping_punctuation

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT.parent / "shared" / "data" / "ansm-thesaurus-2023-09" / "thesaurus_ansm_2023-09.csv"
ADVICE = default_referentials().get("ansm-thesaurus-advice")
KEYWORDS = {"inr": "inr", "kalaemia": "kaliemi", "natraemia": "natremi", "glycaemia": "glycemi", "ecg": ("ecg", "qt"),
            "drug-levels": "plasmatique", "renal-function": "fonction renale", "blood-pressure": "arterielle",
            "blood-count": ("hemogramme", "numeration", "nfs"), "clinical": "surveillance clinique"}


def _number_in(value: float, text: str) -> bool:
    shown = f"{value:g}"
    return re.search(rf"(?<![\d,.]){re.escape(shown)}(?![\d])|(?<![\d,.]){re.escape(shown.replace('.', ','))}(?![\d])",
                     text) is not None


@pytest.mark.skipif(not CSV.exists(), reason="thesaurus table of ../shared absent")
def test_seeded_sample_every_fact_is_in_the_source_conduct_text() -> None:
    with CSV.open(encoding="utf-8", newline="") as f:
        conduct = {f"{fold(r['substance'])}|{fold(r['interactant'])}": r["conduite"] for r in csv.DictReader(f)}
    keys = ADVICE.keys()
    rng = random.Random(20260115)
    sample = rng.sample(keys, 400) + [k for k in keys if {"max_dose", "spacing_h", "after_stop"} & set(ADVICE.raw(k))]
    for key in sample:
        raw, text = ADVICE.raw(key), fold_keeping_punctuation(conduct[key])
        for code in raw.get("monitor", []):
            words = KEYWORDS[code] if isinstance(KEYWORDS[code], tuple) else (KEYWORDS[code],)
            assert any(w in text for w in words), (key, code)
        if "max_dose" in raw:
            assert "depasser" in text and _number_in(raw["max_dose"]["value"], text), key
            assert raw["max_dose"]["drug"] in text, key
        if "spacing_h" in raw:
            assert _number_in(raw["spacing_h"], text) and re.search(r"heure|\dh\b|\d h\b", text), key
        if "after_stop" in raw:
            assert _number_in(raw["after_stop"]["value"], text) and "arret" in text, key
        if raw.get("avoid"):
            assert "eviter" in text, key
        if raw.get("adjust_dose"):
            assert "posologie" in text, key


@pytest.mark.skipif(not CSV.exists(), reason="thesaurus table of ../shared absent")
def test_the_build_script_gives_the_shipped_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    import build_thesaurus_advice as tool  # type: ignore[import-not-found]

    monkeypatch.setattr(tool, "OUT", tmp_path / "advice.json")
    assert tool.main(["x", str(CSV)]) == 0
    assert (tmp_path / "advice.json").read_bytes() == (ROOT / "referentials" / "thesaurus" / "advice-2023-09.json").read_bytes()


def test_every_advice_belongs_to_a_thesaurus_entry_and_every_code_is_worded() -> None:
    th = default_referentials().get("ansm-thesaurus")
    entry_keys = {f"{e.a}|{fold(e.interactant)}" for e in th.entries}
    assert set(ADVICE.keys()) <= entry_keys
    monitor = {c for k in ADVICE.keys() for c in ADVICE.raw(k).get("monitor", [])}
    units = {ADVICE.raw(k)["after_stop"]["unit"] for k in ADVICE.keys() if "after_stop" in ADVICE.raw(k)}
    for lang in LANGS:
        assert monitor <= set(catalogue(lang)["ix_monitor"]), lang
        assert {u for u in units} | {f"{u}1" for u in units} <= set(catalogue(lang)["ix_period"]), lang


def _pair(tmp_path: Path, first: str, second: str) -> Path:
    entries: list[dict] = [{"resource": {"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "1960-01-01"}}]
    for i, text in enumerate((first, second)):
        entries.append({"resource": {
            "resourceType": "MedicationRequest", "id": f"m{i}", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": text}, "subject": {"reference": "Patient/p"},
            "authoredOn": "2026-01-05", "dosageInstruction": [{"text": "1 par jour"}],
            "dispenseRequest": {"expectedSupplyDuration": {"value": 30, "unit": "d"}}}})
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}), encoding="utf-8")
    return path


def test_interaction_finding_words_the_entrys_own_conduct(tmp_path: Path) -> None:
    path = _pair(tmp_path, "Simvastatine 40 mg comprimé", "Amiodarone 200 mg comprimé")
    found = [f for f in check([path], as_of="2026-01-15").findings if f.rule == "IX001"]
    assert found, "simvastatin + amiodarone is a thesaurus entry"
    f = found[0]
    assert "ne pas dépasser 20 mg par jour de simvastatine" in f.detail
    assert "no more than 20 mg per day of simvastatine" in f.worded("en").detail
