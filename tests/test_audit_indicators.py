"""Prescriber indicators: definitions load and validate; tallies count what they document."""

from __future__ import annotations

from datetime import date

import pytest

from checker.audit.indicators import OVERALL, longest_coverage, tally_records, to_rows
from checker.model import (Concept, Dosage, MedicationIdentity, MedicationOrder, Patient, PatientRecord,
                           SubstanceMatch)
from checker.referentials import Referentials, ReferentialError
from checker.referentials.indicators import REF_ID, parse

AS_OF = date(2026, 1, 15)


def _order(ref: str, atc: str, *, who: str = "Practitioner/a", group: str | None = None, product: str = "",
           start: date = date(2025, 11, 1), days: float | None = None, key: str | None = None) -> MedicationOrder:
    ident = MedicationIdentity(substances=(SubstanceMatch(key or atc.lower(), key or atc.lower(), atc=(atc,)),),
                               method="cip13", confidence=1.0, product=product, generic_group=group)
    dosages = (Dosage(bounds_days=days),) if days else ()
    return MedicationOrder(ref=ref, status="active", intent="order", medication=Concept(text=ref), authored_on=start,
                           requester=who, dosages=dosages, identity=ident)


def _patient(pid: str, born: date, orders: list[MedicationOrder]) -> PatientRecord:
    return PatientRecord(patient=Patient(f"Patient/{pid}", birth_date=born), medication_orders=orders)


@pytest.fixture(scope="module")
def defs():
    return Referentials().get(REF_ID)


def test_every_indicator_documents_numerator_denominator_and_source(defs) -> None:
    assert {d.id for d in defs} >= {"REP-STATINS", "REP-PPI", "REP-ANTIHYPERTENSIVES", "REP-ANTIDEPRESSANTS",
                                    "REP-ANTIBIOTICS", "BIOSIM-GLARGINE", "BZD-HYPNOTIC-4W", "BZD-ANXIOLYTIC-12W",
                                    "ATB-RESISTANCE", "POLY-75-10", "ASPIRIN-ANTIPLATELET", "BZD-LONG-65"}
    for d in defs:
        assert d.numerator["fr"] and d.denominator["fr"] and d.numerator["en"] and d.denominator["en"]
        assert d.source.label and d.source.url.startswith("https://")


def test_tallies(defs) -> None:
    records = [
        _patient("1", date(1980, 1, 1), [
            _order("s1", "C10AA05", group="g1"), _order("s2", "C10AA07", who="Practitioner/b"),
            _order("h1", "N05CF02", start=date(2025, 10, 1), days=28),
            _order("h2", "N05CF02", start=date(2025, 10, 29), days=14),  # contiguous: 42 days in all
            _order("i1", "A10AE04", product="ABASAGLAR 100 unités/ml"), _order("i2", "A10AE04", product="LANTUS"),
        ]),
        _patient("2", date(1940, 1, 1), [_order(f"d{i}", "C09AA05", key=f"s{i}") for i in range(10)]
                 + [_order("ab", "J01CR02"), _order("ap", "B01AC04"), _order("hx", "N05CD08", days=14),
                    _order("bz", "N05BA08", days=10)]),
    ]
    t = tally_records(records, defs, AS_OF)
    assert t[("REP-STATINS", OVERALL)] == [1, 2]
    assert t[("REP-STATINS", "Practitioner/a")] == [1, 1] and t[("REP-STATINS", "Practitioner/b")] == [0, 1]
    assert t[("BZD-HYPNOTIC-4W", OVERALL)] == [1, 2]  # patient 1 over 28 days, patient 2 under
    assert t[("BIOSIM-GLARGINE", OVERALL)] == [1, 2]
    assert t[("POLY-75-10", OVERALL)] == [1, 1]  # only patient 2 is 75+, with 12 substances
    assert t[("ATB-RESISTANCE", OVERALL)] == [1, 1]
    assert t[("ASPIRIN-ANTIPLATELET", OVERALL)] == [0, 1]  # clopidogrel, no aspirin
    assert t[("BZD-LONG-65", OVERALL)] == [1, 1]  # patient 1 is under 65: not in the denominator
    rows = to_rows(t, defs, "en")
    statins = [r for r in rows if r["indicator"] == "REP-STATINS"]
    assert statins[0]["scope"] == "overall" and statins[0]["value_percent"] == 50.0
    assert statins[0]["numerator_definition"].startswith("Those whose product")


def test_longest_coverage() -> None:
    assert longest_coverage([(date(2025, 1, 1), date(2025, 1, 29)), (date(2025, 2, 10), date(2025, 2, 12))]) == 28
    assert longest_coverage([(date(2025, 1, 1), date(2025, 1, 20)), (date(2025, 1, 20), date(2025, 2, 1))]) == 31


@pytest.mark.parametrize("text, message", [
    ('{"indicators": [', ":1: not valid JSON"),
    ('{"sources": {"s": {"label": "L", "url": "https://x"}},\n "indicators": [\n  {"id": "X", "kind": "odd"}]}',
     ":3: indicator X: kind must be"),
])
def test_loader_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ReferentialError, match=message):
        parse(text, "rosp.json")


def test_shipped_file_is_in_the_manifest() -> None:
    refs = Referentials()
    entry = refs.manifest[REF_ID]
    assert entry.files[0][0] == "indicators/rosp2016.json"
    assert (refs.root / entry.files[0][0]).is_file()


@pytest.mark.parametrize("status", ["not-done", "declined", "not-taken"])
def test_a_record_of_a_drug_not_taken_counts_in_no_indicator(defs, status: str) -> None:
    from dataclasses import replace

    statin = replace(_order("s1", "C10AA05", group="g1"), status=status, kind="statement")
    t = tally_records([_patient("1", date(1980, 1, 1), [statin, _order("s2", "C10AA07")])], defs, AS_OF)
    assert t[("REP-STATINS", OVERALL)] == [0, 1]


# --- point in time: an indicator about past prescriptions does not move with the audit date ---------

def _ended(o: MedicationOrder, status: str = "completed") -> MedicationOrder:
    o.status = status
    return o


def test_age_is_the_age_when_prescribed_not_on_the_audit_date(defs) -> None:
    """Born 1 Mar 1951: 74 when bromazepam was written in 2025, 75 and over afterwards. A later audit date
    does not bring the patient into the 65+ or 75+ denominators by ageing alone."""
    born = date(1951, 3, 1)
    record = _patient("old", born, [_order("bz", "N05BA08", start=date(2025, 6, 1), days=10)]
                      + [_order(f"p{i}", "C09AA05", key=f"k{i}", start=date(2025, 6, 1), days=30) for i in range(10)])
    early = tally_records([record], defs, date(2025, 7, 1))
    late = tally_records([record], defs, date(2027, 1, 1))
    assert early == late
    assert early[("BZD-LONG-65", OVERALL)] == [1, 1]  # 74 at the prescription: within 65+
    assert early.get(("POLY-75-10", OVERALL), [0, 0]) == [0, 0]  # 74, not 75+, when the 11 lines ran


def test_polypharmacy_counts_lines_taken_together_even_when_ended(defs) -> None:
    """Ten substances taken together in 2025 at 80, all completed by the audit: the patient counts; the
    same ten taken one after the other (never together) do not make the numerator."""
    born = date(1940, 1, 1)
    together = [_ended(_order(f"t{i}", "C09AA05", key=f"k{i}", start=date(2025, 3, 1), days=30)) for i in range(10)]
    apart = [_ended(_order(f"a{i}", "C09AA05", key=f"k{i}", start=date(2024, 1, 1 + 2 * i), days=1))
             for i in range(10)]
    t = tally_records([_patient("t", born, together), _patient("a", born, apart)], defs, date(2026, 6, 1))
    assert t[("POLY-75-10", OVERALL)] == [1, 2]
