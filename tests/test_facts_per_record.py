"""Per-record memos of the facts layer answer as a scan of the whole record would (seeded records)."""

import random
from datetime import date, timedelta

from checker.facts.record import latest_observation
from checker.model import Coding, Concept, Observation, PatientRecord

SYSTEMS = ("http://loinc.org", "urn:other")
CODES = ("a", "b", "c", "d")


def _scan(record, system, codes, day, max_days, with_value):
    oldest = day - timedelta(days=max_days) if max_days is not None else date.min
    best = None
    for o in sorted((o for o in record.observations if any(c.system == system and c.code in codes
                                                           for c in o.code.codings)),
                    key=lambda o: o.effective or date.min, reverse=True):
        if o.status in ("entered-in-error", "cancelled") or o.effective is None or not oldest <= o.effective <= day:
            continue
        if with_value and o.value is None:
            continue
        if best is None or o.effective > best.effective:
            best = o
    return best


def test_index_matches_a_full_scan():
    rng = random.Random(20260115)
    start = date(2025, 1, 1)
    for n in range(300):
        obs = []
        for i in range(rng.randint(0, 12)):
            codings = tuple(Coding(rng.choice(SYSTEMS), rng.choice(CODES)) for _ in range(rng.randint(1, 2)))
            obs.append(Observation(f"Observation/{n}-{i}", Concept(codings=codings),
                                   value=rng.choice([None, 1.0, 2.0]),
                                   effective=rng.choice([None, start + timedelta(days=rng.randint(0, 60))]),
                                   status=rng.choice(["final", "final", "cancelled", "entered-in-error"])))
        record = PatientRecord(patient=None, observations=obs)
        for _ in range(10):
            codes = frozenset(rng.sample(CODES, rng.randint(1, 3)))
            system = rng.choice(SYSTEMS)
            day = start + timedelta(days=rng.randint(-5, 70))
            max_days = rng.choice([None, 0, 7, 30])
            with_value = rng.random() < 0.5
            assert latest_observation(record, system, codes, day, max_days, with_value=with_value) is \
                _scan(record, system, codes, day, max_days, with_value)


def test_lines_of_one_day_read_the_conditions_once(monkeypatch):
    """Every line judged on a day asks the same question of the problem list: its texts are read once."""
    import re
    from types import SimpleNamespace

    import checker.facts.record as R
    from checker.model import Condition

    conditions = [Condition(f"Condition/{i}", Concept(text=t)) for i, t in
                  enumerate(["hypertension", "pas d'ulcère gastrique", "diabète"])]
    record = PatientRecord(patient=None, conditions=conditions)
    matcher = SimpleNamespace(codes=(), patterns=(re.compile("ulc[eè]re"),))
    calls = []
    real = R.concept_polarity
    monkeypatch.setattr(R, "concept_polarity", lambda m, c: calls.append(c) or real(m, c))
    answers = {R.stated(record, date(2026, 1, 15), matcher, missing="ulcer") for _ in range(5)}
    assert len(answers) == 1 and next(iter(answers)).value is False
    assert len(calls) == 3


def test_reason_references_are_resolved_without_rescanning_the_conditions(monkeypatch):
    """Each line's ``reasonReference`` finds its Condition through the record's index (built once)."""
    import importlib

    from checker.model import Condition, MedicationOrder

    I = importlib.import_module("checker.facts.indications")

    conditions = [Condition(f"Condition/c{i}", Concept(text=f"problem {i}")) for i in range(50)]
    record = PatientRecord(patient=None, conditions=conditions)
    orders = [MedicationOrder(f"MedicationRequest/m{i}", "active", "order", Concept(text="x"),
                              reason_refs=(f"Condition/c{i}",)) for i in range(50)]
    calls = []
    real = I.ref_tail
    monkeypatch.setattr(I, "ref_tail", lambda r: calls.append(r) or real(r))
    found = [I.indications(record, o, date(2026, 1, 15)) for o in orders]
    assert [[i.condition.ref for i in f] for f in found] == [[f"Condition/c{i}"] for i in range(50)]
    assert len(calls) == 100  # each condition once, each reference once
