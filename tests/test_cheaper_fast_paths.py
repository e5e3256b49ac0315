"""The cheaper-equivalent rules' shared work gives what the plain functions give.

EQ001 looks up a medication's cheaper substitute once per identified medication, EQ002 its
répertoire specialty and whether the line's words name its substances, EQ005 its strategies (leaving
out those whose condition on the medication fails) and a larger pack once per medication and coded pack; a line's cost comparison is remembered per dosages,
dispense and packs, the savings, their phrases and the price sentences by the comparison's value. Each memo is checked against the plain function it stands
for on seeded exports with a line for every priced specialty of the drug index (every répertoire
group with a priced member among them), read as an export is read (lines of one reading share their
medication and dosage objects), and with memos emptied when full.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from checker import memo
from checker.api import identify_records
from checker.economics.costs import CostComparison
from checker.fhir_input import read
from checker.model import PatientRecord
from checker.referentials import default_referentials
from checker.registry import RunSettings, get_rule
from checker.rules import cheaper
from tests.conftest import SAMPLES

AS_OF = date(2026, 1, 15)
REFS = default_referentials()
IDX = REFS.get("bdpm")
CIP13 = "http://data.esante.gouv.fr/ansm/medicament/codeCIP13"
RULES = ["EQ001", "EQ002", "EQ003", "EQ004", "EQ005"]
MEMOS = ["_generic_offer", "_generic_parts", "_dci_advice", "_described", "_biosimilar_offer", "_text_names", "_line_strategies", "_strategy_texts",
         "_larger_pack", "_substance", "_strength_text", "_strength"]


def _priced() -> list[tuple[str, list[Any]]]:
    """Every specialty with a priced presentation, with its presentations (all of them: a line may
    code an unpriced one)."""
    out = []
    for cis in sorted(IDX.specialties):
        pres = IDX.presentations(cis)
        if any(p.price for p in pres):
            out.append((cis, pres))
    return out


PRICED = _priced()


def _named(*words: str) -> list[tuple[str, list[Any]]]:
    return [(cis, pres) for cis, pres in PRICED if any(w in IDX.specialty(cis).name.upper() for w in words)]


PPIS = _named("OMEPRAZOLE", "PANTOPRAZOLE", "LANSOPRAZOLE", "RABEPRAZOLE")
NSAIDS = _named("IBUPROFENE", "KETOPROFENE", "NAPROXENE", "DICLOFENAC")
SARTANS = _named("SARTAN")
SARTAN_DIURETICS = [(cis, pres) for cis, pres in SARTANS if "HYDROCHLOROTHIAZIDE" in IDX.specialty(cis).name.upper()]


def _line(rng: random.Random, pid: str, i: int, cis: str, pres: list[Any]) -> dict[str, Any]:
    spec = IDX.specialty(cis)
    p = rng.choice(pres)
    subs = " + ".join(c.name for c in spec.components) if getattr(spec, "components", None) else ""
    how = rng.random()
    if how < 0.9 or not subs:  # coded by its pack, worded by its name (brand) or with the DCI beside it
        text = spec.name if rng.random() < 0.8 else f"{subs} ({spec.name})"
        medication = {"coding": [{"system": CIP13, "code": p.cip13, "display": p.label}], "text": text}
    else:  # written as a DCI, sometimes with the laboratory's name
        words = spec.name.split(",")[0]
        medication = {"text": words if rng.random() < 0.5 else f"{subs} {words.split()[-1]}"}
    days = rng.choice([7, 10, 28, 30, 90, 180, None])
    dosage: dict[str, Any] = rng.choice([
        {"text": "1 comprimé matin et soir"},
        {"timing": {"repeat": {"frequency": rng.randint(1, 3), "period": 1, "periodUnit": "d",
                               **({"boundsDuration": {"value": days, "unit": "d", "system": "http://unitsofmeasure.org",
                                                      "code": "d"}} if days else {})}},
         "doseAndRate": [{"doseQuantity": {"value": rng.choice([1, 2, 0.5]), "unit": rng.choice(["comprimé", "mg", "ml"])}}]},
    ])
    line: dict[str, Any] = {
        "resourceType": "MedicationRequest", "id": f"{pid}-m{i}", "intent": "order",
        "status": rng.choice(["active", "active", "active", "completed", "stopped"]),
        "subject": {"reference": f"Patient/{pid}"}, "medicationCodeableConcept": medication,
        "dosageInstruction": [dosage],
        "authoredOn": (date(2025, 1, 1) + timedelta(days=rng.randrange(0, 360))).isoformat()}
    if rng.random() < 0.7:
        line["dispenseRequest"] = {
            **({"expectedSupplyDuration": {"value": rng.choice([28, 30, 90]), "unit": "d",
                                           "system": "http://unitsofmeasure.org", "code": "d"}} if rng.random() < 0.7 else {}),
            **({"quantity": {"value": rng.choice([1, 30, 60])}} if rng.random() < 0.4 else {}),
            **({"numberOfRepeatsAllowed": rng.choice([0, 2])} if rng.random() < 0.3 else {})}
    if rng.random() < 0.05:
        line["substitution"] = {"allowedBoolean": False,
                                **({"reason": {"text": rng.choice(["MTE", "EFG", "CIF", "convenance"])}}
                                   if rng.random() < 0.7 else {})}
    return line


def _export(tmp: Path, seed: int, n: int) -> list[PatientRecord]:
    """``n`` patients of 1 to 8 lines drawn from every priced specialty (each taken in turn, then at
    random, so every one appears), some with a hypertension recorded, written as NDJSON and read."""
    rng = random.Random(seed)
    order = list(PRICED)
    rng.shuffle(order)
    k = 0
    patients, lines, conditions = [], [], []
    for p in range(n):
        pid = f"p{seed}-{p}"
        patients.append({"resourceType": "Patient", "id": pid, "gender": rng.choice(["male", "female"]),
                         "birthDate": f"{rng.randint(1930, 2020)}-05-04"})
        if rng.random() < 0.3:
            conditions.append({"resourceType": "Condition", "id": f"{pid}-c", "subject": {"reference": f"Patient/{pid}"},
                               "clinicalStatus": {"coding": [{"code": "active"}]},
                               "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10",
                                                    "code": rng.choice(["I10", "K21.9", "E11"])}]}})
        for i in range(rng.randint(1, 8)):
            cis, pres = order[k % len(order)] if k < len(order) else rng.choice(order)
            k += 1
            lines.append(_line(rng, pid, i, cis, pres))
        if rng.random() < 0.15:  # a PPI with a short NSAID course (a strategy about the record's other lines)
            for i, pool in ((20, PPIS), (21, NSAIDS)):
                lines.append(_line(rng, pid, i, *rng.choice(pool)))
                lines[-1]["dosageInstruction"] = [{"timing": {"repeat": {
                    "frequency": 1, "period": 1, "periodUnit": "d",
                    "boundsDuration": {"value": rng.choice([5, 7, 30]), "unit": "d"}}}}]
                lines[-1]["authoredOn"] = "2025-11-02"
        if rng.random() < 0.15:  # a sartan started in hypertension
            lines.append(_line(rng, pid, 22, *rng.choice(rng.choice([SARTANS, SARTAN_DIURETICS]))))
            conditions.append({"resourceType": "Condition", "id": f"{pid}-hta", "subject": {"reference": f"Patient/{pid}"},
                               "clinicalStatus": {"coding": [{"code": "active"}]},
                               "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]}})
    folder = tmp / f"export-{seed}"
    folder.mkdir()
    for name, rows in (("Patient", patients), ("Condition", conditions), ("MedicationRequest", lines)):
        (folder / f"{name}.ndjson").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    records = read(str(folder), as_of=AS_OF).records
    identify_records(records, REFS)
    return records


def _findings(records: list[PatientRecord], lang: str = "fr", jurisdiction: str = "fr") -> list[str]:
    settings = RunSettings(as_of=AS_OF, lang=lang, jurisdiction=jurisdiction)
    out: list[str] = []
    for record in records:
        shared: dict[object, object] = {}
        for rule_id in RULES:
            out.extend(f.to_json().decode() for f in get_rule(rule_id).run(record, settings, REFS, shared))
    return out


def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """The EQ rules without their shared work: every memo replaced by the function it remembers."""
    for name in MEMOS:
        monkeypatch.setattr(cheaper, name, getattr(cheaper, name).__wrapped__)
    monkeypatch.setattr(cheaper, "_shared_comparison", cheaper._comparison)
    monkeypatch.setattr(cheaper, "_may_apply", lambda idx, ident, strat: True)  # every strategy's handler asked
    monkeypatch.setattr(cheaper, "_cost_words", cheaper._plain_cost_words)
    monkeypatch.setattr(cheaper, "_price", cheaper._plain_price)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> list[list[PatientRecord]]:
    tmp = tmp_path_factory.mktemp("cheaper")
    n = len(PRICED) // 4 + 1  # about 4.5 lines per patient: every priced specialty at least once per export
    return [_export(tmp, seed, n) for seed in (1,)]


def _rules_of(findings: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in findings:
        rule = json.loads(f)["rule"]
        out[rule] = out.get(rule, 0) + 1
    return out


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_cheaper_findings_are_the_same_without_the_shared_work(monkeypatch: pytest.MonkeyPatch,
                                                               exports: list[list[PatientRecord]], lang: str) -> None:
    for records in exports:
        fast = _findings(records, lang)
        again = _findings(records, lang)  # the memos now full of this export
        with monkeypatch.context() as m:
            _plain(m)
            plain = _findings(records, lang)
        assert fast == plain
        assert again == plain
        counts = _rules_of(fast)
        assert counts.get("EQ001", 0) > 400 and counts.get("EQ002", 0) > 500 and counts.get("EQ003", 0) > 100 \
            and counts.get("EQ004", 0) > 3 and counts.get("EQ005", 0) > 200, counts
        strategies = {json.loads(f)["evidence"].get("strategy") for f in fast}
        carried = {a for r in records for o in r.medication_orders if o.identity for a in o.identity.atc_codes}
        reachable = {s.id for s in REFS.get("cheaper-strategies")  # a strategy for a class some identified line is in
                     if any(p == "*" or a.startswith(p) for p in s.prescribed_atc for a in carried)}
        assert len(reachable) >= 4 and reachable <= strategies, (reachable, strategies)


def test_every_priced_specialty_is_in_the_exports(exports: list[list[PatientRecord]]) -> None:
    """The exports hold a line coded or worded for every priced specialty (so every répertoire group
    with a priced member), identified to it in most cases."""
    seen = {o.identity.cis for records in exports for r in records for o in r.medication_orders
            if o.identity is not None and o.identity.cis}
    assert len(seen) > 0.9 * len(PRICED)
    groups = {IDX.specialty(cis).generic_group for cis, _ in PRICED if IDX.specialty(cis).generic_group}
    assert len({IDX.specialty(c).generic_group for c in seen if IDX.specialty(c) and IDX.specialty(c).generic_group}) \
        > 0.9 * len(groups)


def test_cheaper_findings_of_the_samples_are_the_same_without_the_shared_work(monkeypatch: pytest.MonkeyPatch) -> None:
    records = read(str(SAMPLES), as_of=AS_OF).records
    identify_records(records, REFS)
    for jurisdiction in ("fr", "ma"):
        fast = _findings(records, jurisdiction=jurisdiction)
        with monkeypatch.context() as m:
            _plain(m)
            assert _findings(records, jurisdiction=jurisdiction) == fast
        assert fast


def test_memos_emptied_when_full_give_the_same_findings(monkeypatch: pytest.MonkeyPatch,
                                                        exports: list[list[PatientRecord]]) -> None:
    records = exports[0][:400]
    expected = _findings(records)
    monkeypatch.setattr(memo, "MAX_ENTRIES", 3)
    monkeypatch.setattr(cheaper, "COST_ENTRIES", 2)
    assert _findings(records) == expected


def test_comparisons_equal_in_value_but_not_in_type_are_not_shared() -> None:
    """``30`` and ``30.0`` days compare equal but are written differently: each keeps its own words."""
    base = {"currency": "EUR", "unit_price": 0.5, "alt_unit_price": 0.25, "units_per_day": None, "dispensed_units": None}
    whole = CostComparison(days=30, **base)  # type: ignore[arg-type]
    real = CostComparison(days=30.0, **base)  # type: ignore[arg-type]
    assert whole == real
    for first, second in ((whole, real), (real, whole)):
        cheaper._COSTS.clear()
        cheaper._PRICES.clear()
        cheaper._COSTS_BY_ID.clear()
        for cmp in (first, second):
            assert cheaper._saving(cmp) == cheaper._plain_cost_words(cmp)[1]
            assert type(cheaper._saving(cmp).get("days")) is type(cmp.days)
            assert type(cheaper._evidence_costs(cmp)["treatment_days"]) is type(cmp.days)
            assert repr(cheaper._price(cmp, "A", "B")) == repr(cheaper._plain_price(cmp, "A", "B"))


def test_evidence_costs_are_a_fresh_dict_each_time() -> None:
    cmp = CostComparison("EUR", 0.5, 0.25, 2.0, 30.0)
    first = cheaper._evidence_costs(cmp)
    first["unit_price"] = -1
    assert cheaper._evidence_costs(cmp)["unit_price"] == 0.5
