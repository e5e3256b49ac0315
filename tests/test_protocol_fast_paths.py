"""The protocol rules' second round of shared work gives what the plain engine gives.

OP001/OP002 decide the outcomes they do not report from the criteria's verdicts alone (steps worded
only for findings); a line that states no reason, in a record without conditions, shares its own
words' indications, the verdicts of the criteria made only of condition tests and "a reason is given",
and an outcome reached through such criteria alone, with the lines of the same dosages and note; the
findings of one path through a protocol share its reasoning and evidence parts; a treatment-duration
answer is remembered by its block's dates and counts. Checked over every shipped protocol (each medication class and each class
a criterion names, service orders from the samples) on seeded exports read as an export is read
(lines sharing their dosage objects), against the plain engine.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from checker import criteria, facts, memo
from checker.api import identify_records
from checker.facts import indications as plain_indications
from checker.fhir_input import read
from checker.model import PatientRecord
from checker.protocols import engine
from checker.referentials import default_referentials
from checker.registry import RunSettings, get_rule
from checker.rules import protocols
from tests.conftest import SAMPLES

evaluator = __import__("importlib").import_module("checker.criteria.evaluate")
AS_OF = date(2026, 1, 15)
REFS = default_referentials()
PROTOCOLS = REFS.get("protocols")
TABLES = REFS.get("clinical-facts")
WORDS = ["pour cystite", "rhinopharyngite", "pas de bronchite", "reflux", "RGO ancien", "épilepsie",
         "otite moyenne aiguë", "angine à streptocoque", "sinusite frontale", "pas d'ulcère", "insomnie",
         "1 comprimé le soir", "selon besoin", ""]
PROBLEMS = [("J20.9", "Bronchite aiguë"), ("J00", "Rhinopharyngite"), ("K21.0", "RGO"), ("G40.9", "Épilepsie"),
            ("N30.0", "Cystite aiguë"), ("J44.9", "BPCO")]


def _classes() -> list[str]:
    """An ATC code under every prefix a medication protocol applies to or one of its criteria names."""
    prefixes: set[str] = set()
    for p in PROTOCOLS.medications():
        prefixes.update(a for m in p.medications for a in m.atc)
        for crit in p.criteria.values():
            for node in criteria.walk(crit.node):
                if isinstance(node, criteria.Local):
                    prefixes.update(node.spec.atc)
    return sorted((p + "AA01A01")[:7] for p in prefixes)


CLASSES = _classes()


def _patient(rng: random.Random, pid: str, dosages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"resourceType": "Patient", "id": pid, "gender": rng.choice(["male", "female", "unknown"]),
                                  **({"birthDate": f"{rng.randint(1930, 2020)}-03-04"} if rng.random() < 0.9 else {})}]
    if rng.random() < 0.3:  # most records of an export hold no conditions
        code, text = rng.choice(PROBLEMS)
        out.append({"resourceType": "Condition", "id": f"{pid}-c", "subject": {"reference": f"Patient/{pid}"},
                    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}], "text": text},
                    "clinicalStatus": {"coding": [{"code": "active"}]},
                    "onsetDateTime": f"2025-{rng.randint(6, 12):02d}-{rng.randint(1, 28):02d}"})
    for i in range(rng.randrange(1, 10)):
        atc = rng.choice(CLASSES)
        line: dict[str, Any] = {
            "resourceType": "MedicationRequest", "id": f"{pid}-m{i}", "intent": "order",
            "status": rng.choice(["active", "active", "completed", "stopped", "cancelled"]),
            "subject": {"reference": f"Patient/{pid}"},
            "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": atc}], "text": atc},
            "dosageInstruction": [rng.choice(dosages)],
            "dispenseRequest": {"expectedSupplyDuration": {"value": rng.choice([5, 7, 30, 90]), "unit": "days",
                                                           "system": "http://unitsofmeasure.org", "code": "d"}}}
        if rng.random() < 0.9:
            line["authoredOn"] = (date(2025, 6, 1) + timedelta(days=rng.randrange(0, 220))).isoformat()
        if rng.random() < 0.2:
            line["reasonCode"] = [{"text": rng.choice(WORDS) or "angine"}]
        if rng.random() < 0.2:
            line["note"] = [{"text": rng.choice(WORDS) or "renouvellement"}]
        out.append(line)
    return out


def _export(tmp: Path, seed: int, n: int) -> list[PatientRecord]:
    rng = random.Random(seed)
    dosages = [{"text": t, "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}} if t
               else {"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}} for t in WORDS]
    resources = [r for p in range(n) for r in _patient(rng, f"p{seed}-{p}", dosages)]
    folder = tmp / f"export-{seed}"
    folder.mkdir()
    for kind in ("Patient", "Condition", "MedicationRequest"):
        rows = [r for r in resources if r["resourceType"] == kind]
        (folder / f"{kind}.ndjson").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    records = read(str(folder), as_of=AS_OF).records
    identify_records(records, REFS)
    return records


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[PatientRecord]:
    samples = read(str(SAMPLES), as_of=AS_OF).records
    identify_records(samples, REFS)
    tmp = tmp_path_factory.mktemp("protocols")
    return samples + _export(tmp, 5, 300) + _export(tmp, 6, 300)


def _findings(records: list[PatientRecord], lang: str) -> list[str]:
    settings = RunSettings(as_of=AS_OF, lang=lang)
    return [f.to_json().decode() for record in records for rule_id in ("OP001", "OP002")
            for f in get_rule(rule_id).run(record, settings, REFS, {})]


def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine without shared work: a line's own words and the verdicts on them worked out for
    each order, criteria interpreted, indications and matches computed afresh."""
    monkeypatch.setattr(engine._Context, "_own_words", lambda self: None)
    monkeypatch.setattr(engine, "_known_outcome", lambda *args: None)
    monkeypatch.setattr(engine, "_duration_result", engine._plain_duration_result)
    monkeypatch.setattr(engine, "_duration_test", engine._duration_test.__wrapped__)  # type: ignore[attr-defined]
    monkeypatch.setattr(engine, "_judges", lambda protocol: {
        cid: (lambda ctx, node=crit.node: criteria.evaluate(node, ctx)) for cid, crit in protocol.criteria.items()})
    monkeypatch.setattr(engine._Context, "indications",
                        lambda self: plain_indications(self.record, self.order, self.day, self.tables))
    monkeypatch.setattr(evaluator, "_affirmed_match",
                        lambda matcher, concept: facts.concept_matches(matcher, concept, negation=True))
    for name in ("_path", "_step", "_outcome_parts", "_source"):  # what findings of one path or outcome share
        monkeypatch.setattr(protocols, name, getattr(protocols, name).__wrapped__)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_protocol_findings_are_the_same_as_the_plain_engine(monkeypatch: pytest.MonkeyPatch,
                                                           records: list[PatientRecord], lang: str) -> None:
    memo.forget_request_words()
    fast = _findings(records, lang)
    again = _findings(records, lang)  # the memos now hold this export's words
    with monkeypatch.context() as m:
        _plain(m)
        plain = _findings(records, lang)
    assert fast == plain and again == plain
    ops = [json.loads(f) for f in fast]
    assert sum(f["rule"] == "OP002" for f in ops) > 200
    assert {f["evidence"]["protocol"] for f in ops if f["rule"] == "OP002"} == {p.id for p in PROTOCOLS.medications()}
    assert any(i.get("order_text") for f in ops for i in f["evidence"].get("indications", []))  # own words used


def test_own_words_are_shared_by_lines_of_the_same_dosages(records: list[PatientRecord]) -> None:
    """The shortcut is taken (lines of records without conditions that state no reason) and shared."""
    memo.forget_request_words()
    _findings(records, "fr")
    assert len(engine._OWN_WORDS) >= 5 and len(engine._REASON_VERDICTS) >= 5 and len(engine._WALKS) >= 5
    lines = sum(1 for r in records if not r.conditions for o in r.medication_orders if not o.reasons)
    assert len(engine._OWN_WORDS) < lines / 4


@pytest.mark.parametrize("verdicts", [frozenset({"off-protocol", "undetermined"}), frozenset({"conform"}), frozenset()])
def test_outcomes_decided_from_verdicts_are_those_of_the_worded_walk(records: list[PatientRecord],
                                                                   verdicts: frozenset[str]) -> None:
    every = 0
    for record in records:
        for chosen in (PROTOCOLS.medications(), PROTOCOLS.services(), PROTOCOLS.protocols):
            full = engine.evaluate_all(chosen, record, AS_OF, tables=TABLES)
            kept = engine.evaluate_all(chosen, record, AS_OF, tables=TABLES, verdicts=verdicts)
            assert kept == [e for e in full if e.verdict in verdicts]
            every += len(full)
    assert every > 1000


def test_memos_emptied_when_full_give_the_same_findings(monkeypatch: pytest.MonkeyPatch,
                                                        records: list[PatientRecord]) -> None:
    expected = _findings(records, "fr")
    monkeypatch.setattr(engine, "OWN_WORDS_ENTRIES", 1)
    monkeypatch.setattr(engine, "DURATION_ENTRIES", 1)
    assert _findings(records, "fr") == expected


def test_the_words_of_a_check_are_forgotten_after_it(records: list[PatientRecord]) -> None:
    _findings(records[:200], "fr")
    assert engine._OWN_WORDS
    memo.forget_request_words()
    assert not engine._OWN_WORDS and not engine._REASON_VERDICTS and not engine._WALKS


