"""The protocol and patient-risk rules' shared work gives what the plain functions give.

OP001/OP002 compile each protocol's criteria once, share a record's ATC codes and an order's
indications, remember affirmed matches and the parts of a finding every evaluation of an outcome
says alike; PR002/PR003/PR005 remember daily doses, routes and age verdicts per medication,
renal criteria and maxima per medication and age, and the kidney function of records without
observations. Each is checked against the plain function it stands for, over every protocol and
every row of the shipped referentials, on the samples and on seeded generated records whose lines
share their medication and dosage objects across records (as the lines of one reading do).
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from checker import criteria, facts
from checker.api import identify_records
from checker.facts import indications as plain_indications
from checker.fhir_input import read
from checker.iatrogenic import doses
from checker.model import (Coding, Concept, Condition, Dosage, Ingredient, MedicationIdentity, MedicationOrder, Observation,
                           Patient, PatientRecord, Quantity, SubstanceMatch)
from checker.protocols import engine
from checker.referentials import default_referentials
from checker.registry import RunSettings, get_rule
from checker.rules import patient_risks, protocols
from tests.conftest import SAMPLES

evaluator = importlib.import_module("checker.criteria.evaluate")  # the module (the package exports its function)
AS_OF = date(2026, 1, 15)
REFS = default_referentials()
RISKS = REFS.get("iatrogenic-rules")
TABLES = REFS.get("clinical-facts")


def _sample_records() -> list[PatientRecord]:
    records = read(str(SAMPLES), as_of=AS_OF).records
    identify_records(records, REFS)
    return records


def _findings(rule_ids: list[str], records: list[PatientRecord], lang: str = "fr") -> list[str]:
    settings = RunSettings(as_of=AS_OF, lang=lang)
    out: list[str] = []
    for record in records:
        shared: dict[object, object] = {}
        for rule_id in rule_ids:
            out.extend(repr(f.to_dict()) for f in get_rule(rule_id).run(record, settings, REFS, shared))
    return out


# --- the criteria language -----------------------------------------------------------------------

def _combine_general(parts: list[criteria.Verdict], decisive: bool) -> criteria.Verdict:
    """The combination as written before the one-part case was singled out."""
    hits = [p for p in parts if p.value is decisive]
    if hits:
        return criteria.Verdict(decisive, (), evaluator._merge(hits)[1])
    open_ = [p for p in parts if p.value is None]
    if open_:
        missing, evidence = evaluator._merge(open_)
        return criteria.Verdict(None, missing, evidence)
    return criteria.Verdict(not decisive, (), evaluator._merge(parts)[1])


@pytest.mark.parametrize("seed", range(20))
def test_a_combination_of_one_part_is_the_general_combination(seed: int) -> None:
    rng = random.Random(seed)
    words = ["a", "b", "c", criteria.AgeOn(70), criteria.AgeOn(70), criteria.SexOf("female"), criteria.BARE_REASON]
    for _ in range(200):
        value = rng.choice([True, False, None])
        missing = tuple(rng.choice(["birth", "sex", "weight"]) for _ in range(rng.randrange(0, 4))) if value is None else ()
        part = criteria.Verdict(value, missing, tuple(rng.choice(words) for _ in range(rng.randrange(0, 5))))
        for decisive in (True, False):
            got, want = evaluator._combine([part], decisive), _combine_general([part], decisive)
            assert got == want and type(got.missing) is type(want.missing) and type(got.evidence) is type(want.evidence)
        many = [part, *(criteria.Verdict(rng.choice([True, False, None]), ("x",) if rng.random() < 0.5 else (),
                                         (rng.choice(words),)) for _ in range(rng.randrange(1, 3)))]
        for decisive in (True, False):
            assert evaluator._combine(many, decisive) == _combine_general(many, decisive)


def _orders_of(protocol: Any, records: list[PatientRecord]) -> Iterator[tuple[PatientRecord, Any, str]]:
    for record in records:
        for order, target, _ in engine.applicable(protocol, record):
            yield record, order, target


def test_every_compiled_protocol_criterion_judges_as_the_evaluator() -> None:
    """Every criterion of every shipped protocol, for every order of the samples and of generated
    records a protocol applies to: the compiled criterion's verdict is the evaluator's."""
    records = _sample_records() + _generated_protocol_records(30)
    judged = 0
    for protocol in REFS.get("protocols").protocols:
        judges = engine._judges(protocol)
        assert set(judges) == set(protocol.criteria)
        for record, order, target in _orders_of(protocol, records):
            fast = engine._Context(protocol, record, order, target, AS_OF, "fr", TABLES)
            plain = engine._Context(protocol, record, order, target, AS_OF, "fr", TABLES)
            for crit_id, crit in protocol.criteria.items():
                assert judges[crit_id](fast) == criteria.evaluate(crit.node, plain), (protocol.id, order.ref, crit_id)
                judged += 1
    assert judged > 500


# --- OP001 / OP002 ------------------------------------------------------------------------------

ANTIBIOTICS = [("J01CA04", "Amoxicilline 1 g"), ("J01MA02", "Ciprofloxacine 500 mg"), ("J01FA10", "Azithromycine 250 mg")]
OTHERS = [("A02BC01", "Oméprazole 20 mg"), ("A02BC05", "Esoméprazole 40 mg"), ("N05BA12", "Alprazolam 0,25 mg"),
          ("N05CF01", "Zopiclone 7,5 mg"), ("M01AE01", "Ibuprofène 400 mg"), ("B01AC06", "Aspirine 75 mg"),
          ("H02AB06", "Prednisolone 20 mg"), ("B01AF01", "Rivaroxaban 20 mg")]
REASONS = [{"text": "rhinopharyngite"}, {"text": "pas de bronchite"}, {"text": "otite moyenne aiguë"},
           {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "K21.9"}], "text": "RGO"},
           {"text": "anxiété"}, {"text": "épilepsie"}, {"text": "ulcère gastrique ancien"}]
NOTES = ["bronchite aiguë", "pas d'infection bactérienne", "cystite", "insomnie", "", "reflux"]
PROBLEMS = [("J20.9", "Bronchite aiguë"), ("J00", "Rhinopharyngite"), ("K21.0", "RGO avec œsophagite"),
            ("J44.9", "BPCO"), ("G40.9", "Épilepsie"), ("F41.1", "Anxiété généralisée")]


def _generated_protocol_patient(rng: random.Random, pid: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"resourceType": "Patient", "id": pid, "gender": rng.choice(["male", "female", "unknown"]),
                                  **({"birthDate": f"{rng.randint(1930, 2020)}-03-0{rng.randint(1, 9)}"}
                                     if rng.random() < 0.9 else {})}]
    for i in range(rng.randrange(0, 3)):
        code, text = rng.choice(PROBLEMS)
        out.append({"resourceType": "Condition", "id": f"{pid}-c{i}", "subject": {"reference": f"Patient/{pid}"},
                    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}], "text": text},
                    "clinicalStatus": {"coding": [{"code": rng.choice(["active", "active", "resolved"])}]},
                    "onsetDateTime": f"2025-{rng.randint(9, 12):02d}-{rng.randint(1, 28):02d}"})
    for i in range(rng.randrange(1, 12)):
        atc, text = rng.choice(ANTIBIOTICS + OTHERS)
        line: dict[str, Any] = {
            "resourceType": "MedicationRequest", "id": f"{pid}-m{i}", "intent": "order",
            "status": rng.choice(["active", "active", "completed", "stopped", "cancelled"]),
            "subject": {"reference": f"Patient/{pid}"},
            "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": atc}], "text": text},
            "dosageInstruction": [rng.choice([
                {"text": "1 comprimé matin et soir"},
                {"text": rng.choice(NOTES) or "selon besoin"},
                {"timing": {"repeat": {"frequency": rng.randint(1, 3), "period": 1, "periodUnit": "d"}},
                 "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "comprimé"}}]}])],
            "dispenseRequest": {"expectedSupplyDuration": {"value": rng.choice([5, 7, 30, 90]), "unit": "days",
                                                           "system": "http://unitsofmeasure.org", "code": "d"}}}
        if rng.random() < 0.9:
            line["authoredOn"] = (date(2025, 6, 1) + timedelta(days=rng.randrange(0, 220))).isoformat()
        if rng.random() < 0.4:  # sometimes twice the same: evidence repeated in a leaf
            line["reasonCode"] = [rng.choice(REASONS) for _ in range(rng.choice([1, 1, 2]))]
        if rng.random() < 0.2:
            line["note"] = [{"text": rng.choice(NOTES) or "renouvellement"}]
        out.append(line)
    return out


def _generated_protocol_records(n: int, seed: int = 17) -> list[PatientRecord]:
    rng = random.Random(seed)
    resources = [r for p in range(n) for r in _generated_protocol_patient(rng, f"p{p}")]
    records = read(resources, as_of=AS_OF).records
    identify_records(records, REFS)
    return records


def _plain_protocols(monkeypatch: pytest.MonkeyPatch) -> None:
    """The protocol rules without their shared work: criteria interpreted at each evaluation,
    indications, ATC codes, matches and the parts of each finding computed afresh."""
    monkeypatch.setattr(engine, "_judges", lambda protocol: {
        cid: (lambda ctx, node=crit.node: criteria.evaluate(node, ctx)) for cid, crit in protocol.criteria.items()})
    monkeypatch.setattr(engine._Context, "indications",
                        lambda self: plain_indications(self.record, self.order, self.day, self.tables))
    monkeypatch.setattr(engine, "_record_codes",
                        lambda record, shared: tuple((o, engine.atc_codes_of(o)) for o in record.medication_orders))
    monkeypatch.setattr(evaluator, "_affirmed_match",
                        lambda matcher, concept: facts.concept_matches(matcher, concept, negation=True))
    monkeypatch.setattr(protocols, "_outcome_parts", protocols._outcome_parts.__wrapped__)
    monkeypatch.setattr(protocols, "_step", protocols._step.__wrapped__)
    monkeypatch.setattr(protocols, "_source", protocols._source.__wrapped__)
    monkeypatch.setattr(engine, "_questions", engine._questions.__wrapped__)
    monkeypatch.setattr(evaluator, "_combine", _combine_general)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_protocol_findings_are_the_same_without_the_shared_work(monkeypatch: pytest.MonkeyPatch, lang: str) -> None:
    records = _sample_records() + _generated_protocol_records(120)
    fast = _findings(["OP001", "OP002"], records, lang)
    _plain_protocols(monkeypatch)
    plain = _findings(["OP001", "OP002"], records, lang)
    assert fast == plain
    assert sum('"OP002"' in f or "'OP002'" in f for f in fast) > 50


# --- PR002 / PR003 / PR005 -----------------------------------------------------------------------

def _substances(rng: random.Random) -> list[tuple[str, tuple[str, ...]]]:
    """A substance (key, ATC) for every max-dose, renal and elderly row and every STOPP iteration the
    patient-risk rules read."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for kind in ("max-dose", "renal", "elderly"):
        for row in RISKS.kind(kind):
            keys = [k for k in row.keys if k != "*"]
            out.extend((k, tuple(row.atc[:1])) for k in keys[:2])
            out.extend((f"{kind}-{row.id}-{a}".lower(), (a + "01",)) for a in row.atc[:2])
    for family in ("renal", "elderly"):
        for rid in RISKS.stopp_selection(family):
            for it in RISKS.stopp["rules"][rid]["iterations"]:
                for atc in it["medicines"][0]["atc"][:2]:
                    out.append((f"stopp-{atc}".lower(), (atc,)))
    rng.shuffle(out)
    return out


def _medications(rng: random.Random, n: int) -> list[tuple[MedicationIdentity, Concept, tuple[Ingredient, ...]]]:
    subs = _substances(rng)
    out = []
    for i in range(n):
        chosen = rng.sample(subs, rng.choice([1, 1, 1, 2]))
        strength = rng.choice([None, Quantity(rng.choice([1, 5, 20, 100, 500, 1000]), "mg"), Quantity(0.5, "g")])
        substances = tuple(SubstanceMatch(key=k, name=k.upper(), strength=strength, atc=atc) for k, atc in chosen)
        identity = MedicationIdentity(substances=substances, method="test", confidence=1.0,
                                      route=rng.choice(["", "orale", "cutanée", "intraveineuse"]))
        if rng.random() < 0.2:  # labelled by its ingredient only, the same medication objects with another
            out.append((identity, UNLABELLED, (Ingredient(Concept(text=f"ingrédient {i}")),)))
            out.append((identity, UNLABELLED, (Ingredient(Concept(text=f"ingrédient {i} bis")),)))
        else:
            out.append((identity, Concept(text=rng.choice(["comprimé", "gel", "solution injectable", ""]) + f" {i}"), ()))
    return out


UNLABELLED = Concept()
ROUTES = [None, Concept((Coding("http://snomed.info/sct", "26643006"),)), Concept(text="voie cutanée"),
          Concept((Coding("http://snomed.info/sct", "47625008"),))]


def _dosages(rng: random.Random, n: int) -> list[tuple[Dosage, ...]]:
    out: list[tuple[Dosage, ...]] = [()]
    for _ in range(n):
        parts = []
        for _ in range(rng.choice([1, 1, 2])):
            unit = rng.choice(["mg", "comprimé", "g", "mL", "µg"])
            parts.append(rng.choice([
                Dosage(text="selon besoin"),
                Dosage(dose=Quantity(rng.choice([0.5, 1, 2, 3, 100, 500, 1000]), unit), frequency=rng.randint(1, 6),
                       period=rng.choice([1, 1, 7]), period_unit="d", route=rng.choice(ROUTES)),
                Dosage(dose=Quantity(1, unit), frequency=1, frequency_max=4, period=1, period_unit="d", as_needed=True),
                Dosage(dose=Quantity(1, "comprimé"), dose_range_high=Quantity(2, "comprimé"), frequency=3, period=1,
                       period_unit="d", route=rng.choice(ROUTES))]))
        out.append(tuple(parts))
    return out


def _observations(rng: random.Random, pid: str) -> tuple[Observation, ...]:
    out = []
    for n in range(rng.choice([0, 0, 0, 1, 2, 4])):
        name = rng.choice(["egfr", "creatinine-clearance", "creatinine", "weight"])
        spec = TABLES.observations[name]
        value, unit = {"egfr": (rng.choice([8, 25, 45, 70]), "mL/min/1.73m2"),
                       "creatinine-clearance": (rng.choice([9, 28, 55]), "mL/min"),
                       "creatinine": (rng.choice([60, 150, 400]), "µmol/L"),
                       "weight": (rng.choice([3, 15, 60, 95]), "kg")}[name]
        out.append(Observation(ref=f"Observation/{pid}-o{n}", code=Concept((Coding(spec.uri, sorted(spec.codes)[0]),)),
                               value=value, unit=unit, status=rng.choice(["final", "final", "entered-in-error"]),
                               effective=date(2025, 1, 1) + timedelta(days=rng.randrange(0, 400))))
    return tuple(out)


def _risk_records(seed: int, n: int) -> list[PatientRecord]:
    """Records of lines whose medication and dosage objects are drawn from shared pools."""
    rng = random.Random(seed)
    meds, dosages = _medications(rng, 60), _dosages(rng, 25)
    records = []
    for p in range(n):
        pid = f"p{seed}-{p}"
        birth = rng.choice([None, date(1930, 6, 1), date(1950, 2, 28), date(1959, 12, 31), date(1990, 1, 1),
                            date(2015, 7, 1), date(2024, 1, 1)])
        orders = []
        for i in range(rng.randrange(1, 9)):
            identity, medication, ingredients = rng.choice(meds)
            orders.append(MedicationOrder(
                ref=f"MedicationRequest/{pid}-{i}", status=rng.choice(["active", "active", "completed", "stopped"]),
                intent="order", medication=medication, ingredients=ingredients, identity=identity,
                dosages=rng.choice(dosages),
                authored_on=(date(2025, 1, 1) + timedelta(days=rng.randrange(0, 380))) if rng.random() < 0.9 else None))
        conditions = [Condition(ref=f"Condition/{pid}-ckd", code=Concept((Coding("http://hl7.org/fhir/sid/icd-10", "N18.4"),)))
                      ] if rng.random() < 0.1 else []
        records.append(PatientRecord(patient=Patient(f"Patient/{pid}", birth, rng.choice(["female", "male", ""])),
                                     medication_orders=orders, conditions=conditions,
                                     observations=list(_observations(rng, pid))))
    return records


def _clear_risk_memos() -> None:
    for memo in (patient_risks._VERDICTS, patient_risks._ROUTES, patient_risks._DAILY, patient_risks._CONCERNED,
                 patient_risks._CAPS, patient_risks._UNMEASURED, patient_risks._NOT_EVALUABLE, patient_risks._LIMITS,
                 patient_risks._BY_AGE):
        memo.clear()


def _plain_risks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The patient-risk rules without their memos (and with every day's info finding worded)."""
    monkeypatch.setattr(patient_risks, "_holds", patient_risks._holds_plain)
    monkeypatch.setattr(patient_risks, "_daily", doses.daily_dose)
    monkeypatch.setattr(patient_risks, "_concerned", patient_risks._concerned_plain)
    monkeypatch.setattr(patient_risks, "_dose_caps", patient_risks._dose_caps_plain)
    monkeypatch.setattr(patient_risks, "_not_evaluable_parts", patient_risks._not_evaluable_plain)
    monkeypatch.setattr(patient_risks, "_limits", patient_risks._limits_plain)
    monkeypatch.setattr(patient_risks, "_kidney_on",
                        lambda call, day, tables: facts.kidney_function_on(call.record, day, tables))
    real = patient_risks._renal_at
    monkeypatch.setattr(patient_risks, "_renal_at", lambda *args, word_missing=True: real(*args))


RISK_RULES = ["PR002", "PR003", "PR005"]


@pytest.mark.parametrize("seed", range(6))
def test_patient_risk_findings_are_the_same_without_the_memos(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    records = _risk_records(seed, 150)
    _clear_risk_memos()
    fast = _findings(RISK_RULES, records)
    again = _findings(RISK_RULES, records)  # every answer now from the memos
    _plain_risks(monkeypatch)
    plain = _findings(RISK_RULES, records)
    assert fast == again == plain
    rules = {f.split("'rule': ")[1][1:6] for f in fast}
    assert rules == set(RISK_RULES), rules


def test_patient_risk_findings_of_the_samples_are_the_same_without_the_memos(monkeypatch: pytest.MonkeyPatch) -> None:
    records = _sample_records()
    _clear_risk_memos()
    fast = _findings(RISK_RULES + ["DU001", "DU002"], records)  # the duplicate rules read the daily ceilings
    _plain_risks(monkeypatch)
    assert fast == _findings(RISK_RULES + ["DU001", "DU002"], records)


def test_a_memo_emptied_when_full_gives_the_same_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    records = _risk_records(99, 120)
    _clear_risk_memos()
    fast = _findings(RISK_RULES, records)
    monkeypatch.setattr(patient_risks, "MAX_ENTRIES", 3)
    _clear_risk_memos()
    assert _findings(RISK_RULES, records) == fast
    assert all(len(m) <= 3 for m in (patient_risks._DAILY, patient_risks._CAPS, patient_risks._CONCERNED))


# --- the work the memos save (counted, not timed) --------------------------------------------------

def test_the_kidney_function_of_records_without_observations_is_worked_out_once_per_kind_of_patient(
        monkeypatch: pytest.MonkeyPatch) -> None:
    records = [r for r in _risk_records(7, 300) if not r.observations]
    assert len(records) > 100
    calls = []
    real = facts.kidney_function_on
    monkeypatch.setattr(facts, "kidney_function_on", lambda *a: calls.append(a) or real(*a))
    _clear_risk_memos()
    _findings(["PR003"], records)
    assert 0 < len(calls) <= 2 * 3  # known or unknown age, three kinds of recorded sex


def test_a_daily_dose_is_worked_out_once_per_medication_dosage_and_substance(monkeypatch: pytest.MonkeyPatch) -> None:
    records = _risk_records(8, 200)
    calls = []
    real = doses.daily_dose
    monkeypatch.setattr(patient_risks, "daily_dose", lambda order, key: calls.append(
        (id(order.identity), id(order.dosages), key)) or real(order, key))
    _clear_risk_memos()
    _findings(RISK_RULES, records)
    assert calls and len(calls) == len(set(calls))
    lines = sum(len(r.medication_orders) for r in records)
    assert len(calls) < lines / 2


# --- the rows of a medication found through an index (a CDS request brings new medications) ----------

def _substance_keys_to_try(rng: random.Random) -> list[str]:
    """Substance keys over the whole drug referential and every key the risk rows name, with salt words
    after them, their first words alone, other cases and accents: what identification may give."""
    from checker.drugs import drug_index

    named = sorted({k for rows in RISKS.by_kind.values() for r in rows for k in r.keys if k != "*"})
    drugs = sorted(drug_index(REFS).substances)
    keys = named + rng.sample(drugs, min(1500, len(drugs)))
    out = list(keys)
    for k in rng.sample(keys, 400):
        words = k.split()
        out += [f"{k} {rng.choice(['sodique', 'd ethyle', 'chlorhydrate', 'x'])}", words[0], k.upper(),
                k.replace("e", "é", 1), f"{k}  ", "-".join(words)]
    return out


@pytest.mark.parametrize("seed", range(3))
def test_the_rows_of_a_medication_found_through_the_index_are_every_row_that_matches(seed: int) -> None:
    from checker.iatrogenic import risks

    rng = random.Random(seed)
    keys = _substance_keys_to_try(rng)
    prefixes = sorted({p for rows in RISKS.by_kind.values() for r in rows for p in r.atc})
    found = 0
    for n in range(2500):
        subs = []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            atc = tuple(rng.choice(prefixes) + "X" * rng.randrange(0, 3) for _ in range(rng.randrange(0, 2)))
            subs.append(SubstanceMatch(rng.choice(keys), "x", None, atc))
        ident = MedicationIdentity(tuple(subs), "text-exact", 1.0)
        for rows in RISKS.by_kind.values():
            fast = risks._rows_matching(rows, ident)
            assert fast == risks._rows_matching_plain(rows, ident), (n, [s.key for s in subs])
            found += len(fast)
    assert found > 2000  # the comparisons are not vacuous


def test_a_substance_placed_by_its_atc_code_gets_the_same_classes_when_remembered() -> None:
    th = REFS.get("ansm-thesaurus")
    from checker.iatrogenic.thesaurus import ATC_CLASS_EXTENSIONS

    codes = sorted({p + "01" for prefixes in ATC_CLASS_EXTENSIONS.values() for p in prefixes}) + ["Z99ZZ01"]
    for i, code in enumerate(codes):
        key = f"substance inconnue {i}"
        for atc in ((code,), frozenset({code, "A01AA01"})):
            assert th.closure_with_atc(key, atc) == th._closure_by_atc(key, atc)
            assert th.closure_with_atc(key, atc) is th.closure_with_atc(key, atc)  # remembered
    assert any(th.closure_with_atc(f"substance inconnue {i}", (c,)) for i, c in enumerate(codes))


@pytest.mark.parametrize("seed", range(3))
def test_the_lines_of_each_max_dose_row_gathered_in_one_pass_are_those_of_a_scan_per_row(seed: int) -> None:
    """PR005 gathers each row's lines in one pass over the record: the rows, in row order, each with
    its lines in record order and the first key it names, as asking every row of every line gives
    (seeded records over every max-dose row)."""
    rows = RISKS.kind("max-dose")
    seen = 0
    for record in _risk_records(seed, 150):
        orders = [o for o in record.medication_orders if o.identity is not None]
        plain = []
        for row in rows:
            lines = [(o, keys[0]) for o in orders if (keys := patient_risks.row_matches(row, o.identity))]
            if lines:
                plain.append((row, lines))
        assert patient_risks._lines_by_row(RISKS, orders) == plain
        seen += len(plain)
    assert seen > 50
