"""Dispatch by trigger (checker.registry.Trigger) and focused runs (CDS drafts) are sound.

Over every corpus (the shipped samples; the third-party corpus when present), for every rule:
running it on every record and only on the records its trigger selects gives the same findings;
every medication line a finding implicates is a line the trigger concerns; and a run focused on one
order gives, for that order, the same findings as a full run.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from functools import cache

import pytest

from checker import fhir_input, memo
from checker.api import check_records, identify_records
from checker.findings import Finding
from checker.model import Allergy, MedicationOrder, PatientRecord, ServiceOrder
from checker.referentials import default_referentials
from checker.registry import Dispatch, Rule, RunSettings, Trigger, all_rules, dispatch_of
from tests.conftest import SAMPLES, SHARED

AS_OF = date(2026, 1, 15)
CORPORA = {"samples": SAMPLES, "shared": SHARED / "fhir"}


@cache
def _records(corpus: str) -> tuple[PatientRecord, ...]:
    path = CORPORA[corpus]
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    records = fhir_input.read(str(path), as_of=AS_OF).records
    identify_records(records, default_referentials())
    return tuple(records)


def _key(f: Finding) -> str:
    return repr(f)


def _run(rule: Rule, record: PatientRecord, settings: RunSettings) -> list[Finding]:
    return rule.run(record, settings, default_referentials())


def _triggered() -> Iterator[Rule]:
    return (r for r in all_rules() if r.triggers is not None)


@pytest.mark.parametrize("corpus", sorted(CORPORA))
@pytest.mark.parametrize("rule", list(_triggered()), ids=lambda r: r.id)
def test_a_rule_run_only_where_its_trigger_fires_finds_the_same(rule: Rule, corpus: str) -> None:
    refs = default_referentials()
    trigger = rule.trigger(refs)
    assert trigger is not None, f"{rule.id}: its trigger could not be computed from the shipped referentials"
    settings = RunSettings(as_of=AS_OF)
    full: list[str] = []
    dispatched: list[str] = []
    unconcerned: list[str] = []
    for record in _records(corpus):
        found = _run(rule, record, settings)
        full += map(_key, found)
        if trigger.fires(record):
            dispatched += map(_key, found)
        concerned = {o.ref for o in record.medication_orders if trigger.concerns(o)}
        medication_refs = {o.ref for o in record.medication_orders}
        unconcerned += [f"{f.rule} {f.patient} {ref}" for f in found for ref in f.implicated
                        if ref in medication_refs and ref not in concerned]
    assert dispatched == full
    assert not unconcerned, f"findings implicate lines the trigger does not concern: {unconcerned[:5]}"


def _focus_cases(corpus: str, per_record: int) -> Iterator[tuple[PatientRecord, str]]:
    rnd = random.Random(17)
    for record in _records(corpus):
        refs = sorted({o.ref for o in (*record.medication_orders, *record.service_orders)})
        yield from ((record, ref) for ref in (refs if len(refs) <= per_record else rnd.sample(refs, per_record)))


@pytest.mark.parametrize(("corpus", "per_record"), [("samples", 1000), ("shared", 3)])
def test_a_focused_run_finds_the_same_about_the_focused_order(corpus: str, per_record: int) -> None:
    refs = default_referentials()
    full: dict[int, list[Finding]] = {}  # by record: the records of lines naming no patient all have no ref
    differ: list[str] = []
    cases = 0
    for record, ref in _focus_cases(corpus, per_record):
        if id(record) not in full:
            full[id(record)] = check_records([record], as_of=AS_OF, refs=refs).findings
        wanted = [_key(f) for f in full[id(record)] if ref in f.implicated]
        focused = [_key(f) for f in check_records([record], as_of=AS_OF, refs=refs, focus={ref}).findings
                   if ref in f.implicated]
        cases += 1
        if focused != wanted:
            differ.append(f"{record.ref} focus {ref}")
    assert cases > 0
    assert not differ, differ[:10]


def test_a_rule_whose_trigger_cannot_be_computed_runs_on_every_record() -> None:
    def broken(refs: object) -> Trigger:
        raise KeyError("no such referential")

    rule = next(r for r in all_rules() if r.id == "IX001")
    unsure = Rule(rule.id, rule.name, rule.category, rule.severity, rule.source, rule.referentials, rule.func,
                  rule.family, broken)
    assert unsure.trigger(default_referentials()) is None
    record = next(r for r in _records("samples") if _run(rule, r, RunSettings(as_of=AS_OF)))
    report = check_records([record], as_of=AS_OF, rules=[unsure])
    assert [f for f in report.findings if f.rule == "IX001"]


def test_an_unidentified_line_still_gets_its_finding() -> None:
    """ID001 (not identified) has no trigger: it runs on every record, whatever the others skip."""
    assert next(r for r in all_rules() if r.id == "ID001").triggers is None
    assert [f for f in check_records(list(_records("samples")), as_of=AS_OF).findings if f.rule == "ID001"]


def test_records_without_a_trigger_skip_the_rule() -> None:
    """The engine does use the triggers: a record of one paracetamol line runs no pair rule."""
    refs = default_referentials()
    ix = next(r for r in all_rules() if r.id == "IX001").trigger(refs)
    one = next(r for r in _records("samples") if len([o for o in r.medication_orders if o.identity]) == 1)
    assert ix is not None and not ix.fires(one)


DRUGS = [("C10AA01", "Simvastatine 20 mg"), ("J01FA09", "Clarithromycine 500 mg"), ("B01AA03", "Warfarine 5 mg"),
         ("M01AE01", "Ibuprofène 400 mg"), ("N02BE01", "Paracétamol 1 g"), ("C09AA05", "Ramipril 5 mg"),
         ("C03CA01", "Furosémide 40 mg"), ("N06AB06", "Sertraline 50 mg"), ("N02AX02", "Tramadol 50 mg"),
         ("A02BC01", "Oméprazole 20 mg"), ("B01AC04", "Clopidogrel 75 mg"), ("N05BA12", "Alprazolam 0,25 mg"),
         ("J01CA04", "Amoxicilline 1 g"), ("C07AB07", "Bisoprolol 5 mg")]


def _generated_patient(rnd: random.Random, n: int) -> list[dict[str, object]]:
    """One patient with ``n`` lines of a few interacting drugs, repeated (same-product groups, and
    pairs of products with more overlapping pairs of lines than are reported one by one)."""
    drugs = rnd.sample(DRUGS, rnd.randint(2, 5))
    out: list[dict[str, object]] = [{"resourceType": "Patient", "id": "p", "gender": rnd.choice(["male", "female"]),
                                     "birthDate": f"{rnd.randint(1930, 2005)}-05-1{rnd.randint(0, 9)}"}]
    for i in range(n):
        atc, text = rnd.choice(drugs)
        out.append({"resourceType": "MedicationRequest", "id": f"m{i}", "intent": "order",
                    "status": rnd.choice(["active", "active", "active", "completed", "stopped"]),
                    "subject": {"reference": "Patient/p"}, "authoredOn": f"2025-{rnd.randint(10, 12):02d}-{rnd.randint(1, 28):02d}",
                    "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": atc}], "text": text},
                    "dosageInstruction": [{"timing": {"repeat": {"frequency": rnd.randint(1, 4), "period": 1, "periodUnit": "d"}},
                                           "doseAndRate": [{"doseQuantity": {"value": rnd.randint(1, 3), "unit": "comprimé"}}]}],
                    "dispenseRequest": {"expectedSupplyDuration": {"value": rnd.choice([7, 30, 90, 90]), "unit": "days",
                                                                   "system": "http://unitsofmeasure.org", "code": "d"}}})
    return out


@pytest.mark.parametrize("seed", range(6))
def test_a_focused_run_finds_the_same_on_generated_patients_with_repeated_products(seed: int) -> None:
    refs = default_referentials()
    rnd = random.Random(seed)
    compared = 0
    for _ in range(4):
        records = fhir_input.read(_generated_patient(rnd, rnd.choice([6, 15, 40])), as_of=AS_OF).records
        full = check_records(records, as_of=AS_OF, refs=refs).findings
        for ref in rnd.sample(sorted({o.ref for r in records for o in r.medication_orders}), 3):
            focused = check_records(records, as_of=AS_OF, refs=refs, focus={ref}).findings
            assert ([_key(f) for f in focused if ref in f.implicated]
                    == [_key(f) for f in full if ref in f.implicated]), ref
            compared += sum(ref in f.implicated for f in full)
    assert compared > 0


# --- the engine's dispatch (checker.registry.Dispatch) against each trigger asked alone ------------------

@cache
def _priced_export() -> tuple[PatientRecord, ...]:
    """Lines of every priced specialty of the drug index, read and identified as an export is."""
    import tempfile
    from pathlib import Path

    from tests.test_cheaper_fast_paths import PRICED, _export
    return tuple(_export(Path(tempfile.mkdtemp(prefix="dispatch-")), 3, len(PRICED) // 4 + 1))


@cache
def _line_pool() -> tuple[tuple[MedicationOrder, ...], tuple[ServiceOrder, ...], tuple[Allergy, ...]]:
    """Lines over the whole referential: every priced specialty (the EQ rules, the protocols' classes by
    ATC code), every substance of the interaction thesaurus, every substance of a patient-risk row,
    unidentified lines and the samples' lines; with the samples' service orders and allergies."""
    from tests.test_iatro_support import line
    from tests.test_rule_fast_paths import _substances

    th = default_referentials().get("ansm-thesaurus")
    orders: list[MedicationOrder] = [o for r in _priced_export() for o in r.medication_orders]
    orders += [line(f"th{i}", key) for i, key in enumerate(sorted(s for s in th.substance_nodes() if th.knows(s)))]
    orders += [line(f"risk{i}", key, atc=atc) for i, (key, atc) in enumerate(_substances(random.Random(5)))]
    orders += [replace(o, identity=None) for o in orders[:50]]
    samples = _records("samples")
    orders += [o for r in samples for o in r.medication_orders]
    return (tuple(orders), tuple(s for r in samples for s in r.service_orders),
            tuple(a for r in samples for a in r.allergies))


def _seeded_records(seed: int, n: int) -> Iterator[tuple[PatientRecord, frozenset[str] | None]]:
    """Records of 0 to 9 lines drawn from the pool (a line sometimes twice, a medication on several
    lines), some with service orders or allergies, each with a focus: none, no line, some lines, an
    order of another record."""
    orders, services, allergies = _line_pool()
    rng = random.Random(seed)
    for p in range(n):
        lines = [replace(o, ref=f"MedicationRequest/s{seed}-{p}-{i}") for i, o in
                 enumerate(rng.choice(orders) for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4, 6, 9])))]
        if lines and rng.random() < 0.2:
            lines.append(rng.choice(lines))  # the same resource read twice
        if lines and rng.random() < 0.3:
            lines.append(replace(rng.choice(lines), ref=f"MedicationRequest/s{seed}-{p}-again"))
        record = PatientRecord(patient=None, medication_orders=lines,
                               service_orders=list(rng.sample(services, min(len(services), rng.choice([0, 0, 1, 2])))),
                               allergies=list(rng.sample(allergies, min(len(allergies), rng.choice([0, 0, 0, 1])))))
        refs = [o.ref for o in (*lines, *record.service_orders)]
        focus = rng.choice([None, frozenset(), frozenset(rng.sample(refs, min(len(refs), rng.choice([1, 2])))),
                            frozenset({"MedicationRequest/elsewhere"})])
        yield record, focus


@pytest.mark.parametrize("seed", range(4))
def test_the_engine_dispatch_decides_as_each_trigger_asked_alone(seed: int) -> None:
    refs = default_referentials()
    rules = all_rules()
    triggers = [r.trigger(refs) for r in rules]
    assert sum(t is not None for t in triggers) >= 15 and {t.lines for t in triggers if t} >= {0, 1, 2, 3}
    dispatch = Dispatch(triggers)
    fired: dict[str, int] = {}
    for record, focus in _seeded_records(seed, 3000):
        plain = [t is None or t.fires(record, focus) for t in triggers]
        assert dispatch.firing(record, focus) == plain, (record.medication_orders, focus)
        for r, f in zip(rules, plain):
            fired[r.id] = fired.get(r.id, 0) + f
    assert all(0 < n < 3000 for rid, n in fired.items() if rid not in ("ID001",)), fired  # not vacuous


def test_the_engine_dispatch_with_its_medications_forgotten_when_full_decides_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    refs = default_referentials()
    triggers = [r.trigger(refs) for r in all_rules()]
    monkeypatch.setattr(memo, "MAX_ENTRIES", 3)
    dispatch = Dispatch(triggers)
    for record, focus in _seeded_records(11, 800):
        assert dispatch.firing(record, focus) == [t is None or t.fires(record, focus) for t in triggers]
    assert len(dispatch._bits) <= 3


def test_the_engine_keeps_one_dispatch_per_set_of_triggers() -> None:
    refs = default_referentials()
    triggers = [r.trigger(refs) for r in all_rules()]
    assert dispatch_of(triggers) is dispatch_of(list(triggers))
    assert dispatch_of(triggers[:3]) is not dispatch_of(triggers)


@pytest.mark.parametrize("jurisdiction", ["fr", "ma"])
def test_the_cheaper_rules_run_only_where_their_trigger_fires_find_the_same_on_every_priced_specialty(
        jurisdiction: str) -> None:
    """EQ001–EQ005 over a line of every priced specialty (the samples and the third-party corpus are
    run by the test above): the records their trigger leaves out give no finding, and every line a
    finding implicates is concerned."""
    refs = default_referentials()
    settings = RunSettings(as_of=AS_OF, jurisdiction=jurisdiction)
    counted: dict[str, int] = {}
    for rule in (r for r in all_rules() if r.id.startswith("EQ")):
        trigger = rule.trigger(refs)
        assert trigger is not None, rule.id
        for record in _priced_export():
            found = rule.run(record, settings, refs)
            concerned = {o.ref for o in record.medication_orders if trigger.concerns(o)}
            assert trigger.fires(record) or not found, (rule.id, record.ref)
            assert all(ref in concerned for f in found for ref in f.implicated), (rule.id, record.ref)
            counted[rule.id] = counted.get(rule.id, 0) + len(found)
    assert counted["EQ001"] > 100, counted
    if jurisdiction == "fr":
        assert min(counted.values()) > 0, counted
