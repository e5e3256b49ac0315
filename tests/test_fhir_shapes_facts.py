"""FHIR shapes other systems write for the facts the rules read: a Condition whose verification
status says it is only a candidate diagnosis (HL7 FHIR R4 ValueSet condition-ver-status: unconfirmed,
provisional, differential), an eGFR in another unit or given as a bound (``comparator``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_facts_negation import AS_OF, _aspirin_warfarin, _valproate, findings
from tests.test_facts_point_in_time import bundle, condition, egfr, med

CANDIDATE = ["unconfirmed", "provisional", "differential"]


@pytest.mark.parametrize("status", CANDIDATE)
@pytest.mark.parametrize("text", ["Grossesse", "Pregnancy"])
def test_a_candidate_pregnancy_is_a_note_naming_the_missing_status_not_critical(status: str, text: str) -> None:
    got = findings(_valproate(condition("g", text, verification=status)), AS_OF, "PR004")
    assert [(f["severity"], f["evidence"]["pregnancy"], f["evidence"]["missing"]) for f in got] == \
        [("info", "evoked", "pregnancy-status")]


@pytest.mark.parametrize("status", CANDIDATE)
def test_a_candidate_ulcer_leaves_the_ulcer_question_open(status: str) -> None:
    got = findings(_aspirin_warfarin(condition("c", "Ulcère gastrique", verification=status)), AS_OF, "IX001")
    assert len(got) == 1
    assert got[0]["evidence"]["settled"] is False and "ulcer" in got[0]["evidence"]["missing"]


def test_a_confirmed_pregnancy_stays_critical() -> None:
    got = findings(_valproate(condition("g", "Grossesse", verification="confirmed")), AS_OF, "PR004")
    assert got and got[0]["severity"] == "critical"


def _metformin(obs: dict[str, Any]) -> dict[str, Any]:
    return bundle(obs, med("m1", "Metformine 1000 mg comprimé pelliculé", "2025-03-05", freq=2))


def _egfr(value: float, comparator: str = "", unit: str = "mL/min/{1.73_m2}") -> dict[str, Any]:
    e = egfr("e1", value, "2025-03-01")
    e["valueQuantity"] = {"value": value, "unit": unit}
    if comparator:
        e["valueQuantity"]["comparator"] = comparator
    return e


def _pr003(obs: dict[str, Any], as_of: str = "2026-01-15") -> list[tuple[str, Any]]:
    return [(f["severity"], (f["evidence"].get("renal") or {}).get("value") or f["evidence"].get("bound")
             or f["evidence"].get("missing")) for f in findings(_metformin(obs), as_of, "PR003")]


# metformin: STOPP/START v2 E6, eGFR below 30 (the rule's own threshold)
@pytest.mark.parametrize("value, comparator", [(30, "<"), (15, "<"), (29, "<="), (10, "<")])
def test_an_egfr_given_as_a_bound_at_or_below_the_threshold_is_below_it(value: float, comparator: str) -> None:
    """HL7 FHIR quantity-comparator: "<" the actual value is less than the given value, "<=" less or
    equal: « DFG < 30 » is below 30."""
    got = _pr003(_egfr(value, comparator))
    assert [s for s, _ in got] == ["warning"], got


@pytest.mark.parametrize("value, comparator", [(90, ">"), (60, ">"), (30, ">="), (45, ">=")])
def test_an_egfr_given_as_a_bound_above_the_threshold_is_not_below_it(value: float, comparator: str) -> None:
    assert _pr003(_egfr(value, comparator)) == []


@pytest.mark.parametrize("value, comparator", [(60, "<"), (31, "<"), (30, "<="), (20, ">"), (29, ">=")])
def test_an_egfr_bound_on_both_sides_of_the_threshold_says_it_cannot_tell(value: float, comparator: str) -> None:
    """« DFG < 60 » may be 50 or 20: neither a flag nor silence, a note naming the bound."""
    got = _pr003(_egfr(value, comparator))
    assert got == [("info", f"{comparator} {value:g}")], got


def test_an_egfr_in_ml_per_second_is_converted() -> None:
    """1 mL/s = 60 mL/min: 0.42 mL/s is 25.2 mL/min (below 30), 1.5 mL/s is 90."""
    got = _pr003(_egfr(0.42, unit="mL/s/{1.73_m2}"))
    assert [s for s, _ in got] == ["warning"] and got[0][1] == pytest.approx(25.2)
    assert _pr003(_egfr(1.5, unit="mL/s")) == []


@pytest.mark.parametrize("unit", ["mg/dL", "%", "µmol/L"])
def test_an_egfr_in_a_unit_that_is_no_flow_is_no_value(unit: str) -> None:
    """Not a renal function at all: the check says the renal function is missing, never reads 25."""
    assert _pr003(_egfr(25, unit=unit)) == [("info", "egfr")]


@pytest.mark.parametrize("as_of", ["2025-03-06", "2025-09-05", "2030-03-05"])
def test_a_bound_is_judged_the_same_whatever_the_later_as_of(as_of: str) -> None:
    assert _pr003(_egfr(30, "<"), as_of) == _pr003(_egfr(30, "<"))
    assert _pr003(_egfr(60, "<"), as_of) == _pr003(_egfr(60, "<"))


# --- a dosage timed by a code (HL7 FHIR R4 ValueSet timing-abbreviation, v3 GTSAbbreviation) ------

GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"


def _paracetamol(code: str, grams: float, *, system: str | None = GTS) -> dict[str, Any]:
    m = med("p", "Paracétamol 1 g comprimé", "2026-01-10", days=5)
    coding = {"code": code, **({"system": system} if system else {})}
    m["dosageInstruction"] = [{"timing": {"code": {"coding": [coding]}},
                               "doseAndRate": [{"doseQuantity": {"value": grams, "unit": "g", "code": "g",
                                                                 "system": "http://unitsofmeasure.org"}}]}]
    return bundle(m)


@pytest.mark.parametrize("code, grams, above", [
    ("Q4H", 1, True), ("Q6H", 1, False), ("Q3H", 1, True), ("QID", 1, False), ("QID", 2, True), ("TID", 2, True),
    ("BID", 1, False), ("BID", 3, True), ("QD", 1, False), ("AM", 1, False), ("QOD", 1, False), ("Q2H", 0.5, True),
])
def test_a_dosage_timed_by_a_code_is_read_as_its_frequency(code: str, grams: float, above: bool) -> None:
    """Paracetamol above 4 g a day or 1 g an intake (the rule's own maxima): « Q4H » is six intakes a day."""
    got = findings(_paracetamol(code, grams), "2026-01-15", "PR005")
    assert [f["severity"] for f in got] == (["warning"] if above else []), got


def test_a_timing_code_of_another_system_or_unknown_is_not_guessed() -> None:
    for data in (_paracetamol("Q4H", 1, system="http://example.org/local-timing"), _paracetamol("Q8H", 1)):
        got = findings(data, "2026-01-15", "PR005")
        assert [(f["severity"], f["evidence"]["evaluable"]) for f in got] == [("info", False)]


# --- a dose checked with what the dosage gives: the intake alone, the prescriber's ceiling ---------

def _paracetamol_dosage(dosage: dict[str, Any]) -> dict[str, Any]:
    m = med("p", "Paracétamol 1 g comprimé", "2026-01-10", days=5)
    m["dosageInstruction"] = [dosage]
    return bundle(m)


def _g(value: float, unit: str = "g") -> dict[str, Any]:
    return {"value": value, "unit": unit, **({"system": "http://unitsofmeasure.org", "code": unit} if unit == "g" else {})}


def _pr005(dosage: dict[str, Any]) -> list[tuple[str, Any]]:
    return sorted((f["severity"], f["evidence"].get("evaluable", True))
                  for f in findings(_paracetamol_dosage(dosage), "2026-01-15", "PR005"))


def test_an_intake_above_its_maximum_is_flagged_when_the_frequency_is_unknown() -> None:
    """2 g in one intake (maximum 1 g) needs no frequency to be too much; the day stays unchecked."""
    got = _pr005({"timing": {"repeat": {"when": ["MORN", "EVE"]}}, "doseAndRate": [{"doseQuantity": _g(2)}]})
    assert got == [("info", False), ("warning", True)], got
    assert _pr005({"timing": {"repeat": {"when": ["MORN", "EVE"]}}, "doseAndRate": [{"doseQuantity": _g(1)}]}) \
        == [("info", False)]


@pytest.mark.parametrize("ceiling, unit, above", [(6, "g", True), (3, "g", False), (8, "comprimé", True),
                                                   (4, "comprimé", False)])
def test_an_as_needed_dose_is_judged_by_its_ceiling_per_period(ceiling: float, unit: str, above: bool) -> None:
    """« 1 g si douleur, maximum 6 g par 24 h »: the prescription allows 6 g a day (maximum 4 g)."""
    got = _pr005({"asNeededBoolean": True, "doseAndRate": [{"doseQuantity": _g(1)}],
                  "maxDosePerPeriod": {"numerator": _g(ceiling, unit), "denominator": {"value": 24, "unit": "h",
                                                                                      "code": "h"}}})
    assert got == ([("warning", True)] if above else []), got


def test_a_ceiling_above_the_maximum_is_flagged_even_with_a_lower_regular_dose() -> None:
    got = _pr005({"timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                  "doseAndRate": [{"doseQuantity": _g(1)}],
                  "maxDosePerPeriod": {"numerator": _g(6), "denominator": {"value": 1, "unit": "d", "code": "d"}}})
    assert got == [("warning", True)], got


# rivaroxaban in the shipped rows (patient-risks.tsv, Beers 2023): avoid below 15, reduce the dose at
# or below 50; STOPP/START v2 E3 below 15. A bound that settles the higher threshold only must still
# name the lower ones it leaves open.
def _rivaroxaban(value: float, comparator: str) -> list[dict[str, Any]]:
    e = _egfr(value, comparator)
    e["effectiveDateTime"] = "2026-01-01"
    data = bundle(e, med("r", "Rivaroxaban 15 mg comprimé", "2026-01-05"), birth="1940-01-01")
    return findings(data, "2026-01-15", "PR003")


@pytest.mark.parametrize("value, comparator", [(30, "<"), (20, "<"), (16, "<="), (49, "<")])
def test_a_bound_that_settles_one_threshold_names_the_lower_ones_it_leaves_open(value: float, comparator: str) -> None:
    got = _rivaroxaban(value, comparator)
    assert len(got) == 1 and got[0]["severity"] == "warning", got
    open_below = sorted(c["below"] for c in got[0]["evidence"].get("open_criteria", []))
    assert open_below and max(open_below) <= 15, got[0]["evidence"]
    assert "15" in got[0]["detail"], got[0]["detail"]


@pytest.mark.parametrize("value, comparator", [(10, "<"), (14, "<="), (20, "")])
def test_a_bound_or_value_that_settles_every_threshold_leaves_none_open(value: float, comparator: str) -> None:
    got = _rivaroxaban(value, comparator)
    assert got and "open_criteria" not in got[0]["evidence"], got


def _creatinine_and_weight(value: float, comparator: str) -> list[dict[str, Any]]:
    creat = {"resourceType": "Observation", "id": "cr", "status": "final",
             "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
             "effectiveDateTime": "2025-03-01", "valueQuantity": {"value": value, "unit": "mg/dL"}}
    if comparator:
        creat["valueQuantity"]["comparator"] = comparator
    weight = {"resourceType": "Observation", "id": "w", "status": "final",
              "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
              "effectiveDateTime": "2025-03-01", "valueQuantity": {"value": 60, "unit": "kg"}}
    return [creat, weight]


def _metformin_cg(value: float, comparator: str) -> list[tuple[str, Any]]:
    """A man of 75 (born 1950-02-01, line of 2025-03-05), 60 kg: Cockcroft-Gault (140 - 75) x 60 /
    (72 x creatinine mg/dL), 40 mL/min at 1.354 mg/dL, against metformin's threshold of 30."""
    data = bundle(*_creatinine_and_weight(value, comparator),
                  med("m1", "Metformine 1000 mg comprimé pelliculé", "2025-03-05", freq=2))
    return [(f["severity"], f["evidence"].get("missing") or (f["evidence"].get("renal") or {}).get("kind"))
            for f in findings(data, "2025-03-10", "PR003")]


@pytest.mark.parametrize("comparator", [">", ">="])
def test_a_creatinine_given_as_a_lower_bound_makes_the_clearance_an_upper_bound(comparator: str) -> None:
    """Creatinine > 1.35 mg/dL: the clearance is below about 40 mL/min, maybe below 30: a note, not silence."""
    assert _metformin_cg(1.35, "") == []  # exactly 1.35: about 40 mL/min, above 30
    assert _metformin_cg(1.35, comparator) == [("info", "egfr")]


@pytest.mark.parametrize("comparator", ["<", "<="])
def test_a_creatinine_given_as_an_upper_bound_makes_the_clearance_a_lower_bound(comparator: str) -> None:
    """Creatinine < 2.5 mg/dL: the clearance is above about 22 mL/min, maybe above 30: a note, not a flag."""
    assert _metformin_cg(2.5, "") == [("warning", "cockcroft-gault")]
    assert _metformin_cg(2.5, comparator) == [("info", "egfr")]


@pytest.mark.parametrize("timing", [{"repeat": {"frequency": 1, "period": 4, "periodUnit": "h"}},
                                    {"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation",
                                                          "code": "Q4H"}]}}])
def test_an_as_needed_frequency_is_capped_by_the_prescribers_ceiling(timing: dict[str, Any]) -> None:
    """« 1 g toutes les 4 h si douleur, maximum 4 g par 24 h »: as needed, the frequency is the most
    often an intake may come and the ceiling caps the day (4 g, at the maximum, not 6 g); at most 6 g
    is flagged as before."""
    def dosage(ceiling: float) -> dict[str, Any]:
        return {"asNeededBoolean": True, "timing": timing, "doseAndRate": [{"doseQuantity": _g(1)}],
                "maxDosePerPeriod": {"numerator": _g(ceiling), "denominator": {"value": 24, "unit": "h", "code": "h"}}}
    assert _pr005(dosage(4)) == []
    assert _pr005(dosage(6)) == [("warning", True)]
    assert _pr005({k: v for k, v in dosage(4).items() if k != "maxDosePerPeriod"}) == [("warning", True)]
