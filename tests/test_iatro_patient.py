"""Duplicates (DU…) and patient-specific risks (PR…) on hand-built records, and the data loaders."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from checker.iatrogenic.risks import load_rows
from checker.model import Allergy, Coding, Concept, Dosage, Observation, Quantity
from tests.test_iatro_support import condition, dose, line, record, run

LOINC = "http://loinc.org"


def egfr(value: float, code: str = "62238-1", day: date = date(2026, 1, 5)) -> Observation:
    return Observation(ref=f"Observation/{code}-{value}", code=Concept((Coding(LOINC, code),)), value=value,
                       unit="mL/min", effective=day)


# --- duplicates ------------------------------------------------------------------------------

def test_same_substance_in_two_lines() -> None:
    found = run("DU001", record(line("a", "paracetamol", label="Doliprane"), line("b", "tramadol", "paracetamol", label="Ixprim")))
    assert [(f.evidence["substance"], f.source.edition) for f in found] == [("paracetamol", "2019-07-09")]
    other = run("DU001", record(line("a", "amlodipine"), line("b", "amlodipine")))
    assert len(other) == 1 and other[0].evidence["basis"] == "any"


@pytest.mark.parametrize(("a", "b", "group"), [
    (("omeprazole", "A02BC01"), ("pantoprazole", "A02BC02"), "A02BC"),  # STOPP A3: any duplicate class
    (("valsartan", "C09CA03"), ("losartan", "C09CA01"), "C09CA"),
    (("alprazolam", "N05BA12"), ("bromazepam", "N05BA08"), "N05BA"),
])
def test_same_atc_subgroup_reported(a: tuple[str, str], b: tuple[str, str], group: str) -> None:
    found = run("DU002", record(line("a", a[0], atc=(a[1],)), line("b", b[0], atc=(b[1],))))
    assert [f.evidence["atc_subgroup"] for f in found] == [group]


@pytest.mark.parametrize(("a", "b"), [
    (("bromazepam", "N05BA08"), ("zolpidem", "N05CF02")),  # two ATC subgroups
    (("ibuprofene", "M01AE01"), ("ketoprofene", "M01AE03")),  # graded by the thesaurus: IX001 reports it
    (("acide acetylsalicylique", "B01AC06"), ("ibuprofene", "M01AE01")),
    (("enoxaparine", "B01AB05"), ("warfarine", "B01AA03")),
])
def test_same_class_not_reported(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert run("DU002", record(line("a", a[0], atc=(a[1],)), line("b", b[0], atc=(b[1],)))) == []


def test_same_substance_not_concurrent_or_cancelled() -> None:
    a = line("a", "paracetamol", authored=date(2025, 10, 1), supply_days=10)
    assert run("DU001", record(a, line("b", "paracetamol"))) == []
    assert run("DU001", record(line("a", "paracetamol"), line("b", "paracetamol", status="cancelled"))) == []


@pytest.mark.parametrize(("a", "b", "cls"), [
    (("ramipril", "C09AA05"), ("perindopril", "C09AA04"), "acei"),
    (("furosemide", "C03CA01"), ("bumetanide", "C03CA02"), "loop-diuretic"),
])
def test_same_class(a: tuple[str, str], b: tuple[str, str], cls: str) -> None:
    found = run("DU002", record(line("a", a[0], atc=(a[1],)), line("b", b[0], atc=(b[1],))))
    assert [f.evidence["class"] for f in found] == [cls]
    assert found[0].source.label


def test_same_class_needs_two_different_substances() -> None:
    assert run("DU002", record(line("a", "ibuprofene", atc=("M01AE01",)), line("b", "ibuprofene", atc=("M01AE01",)))) == []
    assert run("DU002", record(line("a", "ibuprofene", atc=("M01AE01",)), line("b", "omeprazole", atc=("A02BC01",)))) == []


# --- allergy ---------------------------------------------------------------------------------

def _allergy(text: str, code: str = "", status: str = "active", verification: str = "confirmed") -> Allergy:
    codings = (Coding("http://snomed.info/sct", code, text),) if code else ()
    return Allergy(ref="AllergyIntolerance/1", code=Concept(codings, text), clinical_status=status,
                   verification_status=verification)


def test_penicillin_allergy_cross_reacts_with_amoxicillin() -> None:
    f = run("PR001", record(line("a", "amoxicilline", atc=("J01CA04",)), allergies=(_allergy("Allergie à la pénicilline"),)))
    assert [(x.severity.value, x.evidence["class"]) for x in f] == [("critical", "penicillins")]


def test_substance_allergy_and_refuted_allergy() -> None:
    f = run("PR001", record(line("a", "ibuprofene", atc=("M01AE01",)), allergies=(_allergy("ibuprofène"),)))
    assert len(f) == 1 and f[0].evidence["substance"] == "ibuprofene"
    assert run("PR001", record(line("a", "amoxicilline", atc=("J01CA04",)),
                               allergies=(_allergy("pénicilline", verification="refuted"),))) == []
    assert run("PR001", record(line("a", "paracetamol"), allergies=(_allergy("pénicilline"),))) == []


# --- older people ----------------------------------------------------------------------------

def test_long_half_life_benzodiazepine_at_82() -> None:
    f = run("PR002", record(line("a", "bromazepam", atc=("N05BA08",)), birth=date(1943, 6, 1)))
    crit = [c["criterion"] for c in f[0].evidence["criteria"]]
    assert f[0].evidence["age"] == 82 and "STOPP K1" in crit and any(c.startswith("Laroche") for c in crit)
    # one finding, cited to the first criterion met (STOPP K1); every criterion's source in evidence
    assert "STOPP" in f[0].source.label
    assert any("Laroche" in x for x in f[0].evidence["sources"]) and any("STOPP" in x for x in f[0].evidence["sources"])


def test_short_half_life_at_70_only_stopp_and_none_at_50() -> None:
    f = run("PR002", record(line("a", "oxazepam", atc=("N05BA04",)), birth=date(1955, 6, 1)))
    assert [c["criterion"] for c in f[0].evidence["criteria"]] == ["STOPP K1"]
    assert run("PR002", record(line("a", "oxazepam", atc=("N05BA04",)), birth=date(1975, 6, 1))) == []


def test_aspirin_above_160_mg_in_older_people() -> None:
    high = line("a", "acide acetylsalicylique", atc=("B01AC06",), dosages=(dose(300, "mg", 1),))
    low = line("a", "acide acetylsalicylique", atc=("B01AC06",), dosages=(dose(75, "mg", 1),))
    assert run("PR002", record(high, birth=date(1950, 1, 1)))[0].evidence["criteria"][0]["criterion"] == "STOPP C1"
    assert run("PR002", record(low, birth=date(1950, 1, 1))) == []


def test_benzodiazepine_duration_is_left_to_op002_and_source_follows_criterion() -> None:
    long = line("a", "zolpidem", atc=("N05CF02",), authored=date(2025, 11, 1))
    f = run("PR002", record(long, birth=date(1950, 1, 1)))[0]
    assert [c["criterion"] for c in f.evidence["criteria"]] == ["STOPP K4"]
    assert "STOPP" in f.source.label and "Laroche" not in f.source.label


# --- renal -----------------------------------------------------------------------------------

def test_metformin_egfr_25() -> None:
    f = run("PR003", record(line("a", "metformine", atc=("A10BA02",)), observations=(egfr(25),)))
    assert [(x.evidence["criteria"][0]["criterion"], x.evidence["renal"]["value"]) for x in f] == [("STOPP E6", 25)]


def test_metformin_egfr_45_is_fine_and_missing_egfr_is_info() -> None:
    assert run("PR003", record(line("a", "metformine", atc=("A10BA02",)), observations=(egfr(45, "33914-3"),))) == []
    f = run("PR003", record(line("a", "metformine", atc=("A10BA02",))))
    assert [(x.severity.value, x.evidence["missing"]) for x in f] == [("info", "egfr")]


def test_most_recent_value_wins_and_nsaid_threshold() -> None:
    obs = (egfr(70, day=date(2025, 1, 1)), egfr(40, "48642-3", day=date(2026, 1, 2)))
    f = run("PR003", record(line("a", "ibuprofene", atc=("M01AE01",)), observations=obs))
    assert f[0].evidence["renal"]["value"] == 40 and f[0].evidence["criteria"][0]["criterion"] == "STOPP E4"


def test_colchicine_clearance_and_ckd_stage() -> None:
    f = run("PR003", record(line("a", "colchicine", atc=("M04AC01",)), observations=(egfr(25, "2164-2"),)))
    assert f[0].severity.value == "critical" and f[0].evidence["renal"]["kind"] == "clcr"
    f = run("PR003", record(line("a", "metformine", atc=("A10BA02",)), conditions=(condition("N18.4"),)))
    assert f[0].evidence["ckd"] == ["N18.4"] and f[0].severity.value == "warning"


def test_digoxin_only_above_125_micrograms() -> None:
    low = line("a", "digoxine", atc=("C01AA05",), dosages=(dose(0.125, "mg", 1),))
    high = line("a", "digoxine", atc=("C01AA05",), dosages=(dose(0.25, "mg", 1),))
    assert run("PR003", record(low, observations=(egfr(20),))) == []
    assert run("PR003", record(high, observations=(egfr(20),)))[0].evidence["criteria"][0]["criterion"] == "STOPP E1"


# --- pregnancy -------------------------------------------------------------------------------

def _pregnant() -> Observation:
    return Observation(ref="Observation/preg", code=Concept((Coding(LOINC, "82810-3"),)),
                       value_concept=Concept((Coding("http://snomed.info/sct", "77386006", "Pregnant"),)),
                       effective=date(2026, 1, 2))


def test_pregnancy_rules_only_when_recorded() -> None:
    f = run("PR004", record(line("a", "ramipril", atc=("C09AA05",)), observations=(_pregnant(),)))
    assert [x.evidence["rule"] for x in f] == ["raas"]
    assert run("PR004", record(line("a", "ramipril", atc=("C09AA05",)))) == []
    f = run("PR004", record(line("a", "acide valproique", atc=("N03AG01",)), conditions=(condition("Z34.0"),)))
    assert [x.evidence["rule"] for x in f] == ["valproate"]


# --- maximum dose ----------------------------------------------------------------------------

def test_paracetamol_max_dose_from_tablets() -> None:
    over = line("a", "paracetamol", dosages=(dose(1, "comprimé", 5),), strength=Quantity(1000, "mg"))
    ok = line("a", "paracetamol", dosages=(dose(1, "comprimé", 3),), strength=Quantity(1000, "mg"))
    f = run("PR005", record(over))
    assert f[0].evidence["over"] == [{"what": "per_day", "mg": 5000.0, "max_mg": 4000, "basis": "adult"}]
    assert run("PR005", record(ok)) == []


def test_paracetamol_total_over_two_lines() -> None:
    a = line("a", "paracetamol", dosages=(dose(1, "g", 3),))
    b = line("b", "tramadol", "paracetamol", dosages=(dose(2, "comprimé", 3),), strength=Quantity(325, "mg"))
    f = [x for x in run("PR005", record(a, b)) if x.evidence["substance"] == "paracetamol"]  # (the helper gives tramadol 325 mg too)
    assert [x.evidence["over"][0]["what"] for x in f] == ["per_day_total"] and len(f[0].implicated) == 2


def test_text_only_dosage_is_not_evaluable_not_guessed() -> None:
    f = run("PR005", record(line("a", "colchicine", dosages=(Dosage(text="3 comprimés par jour"),))))
    assert [(x.severity.value, x.evidence["evaluable"]) for x in f] == [("info", False)]


def test_colchicine_and_weekly_methotrexate() -> None:
    col = line("a", "colchicine", dosages=(dose(1, "mg", 4),))
    assert run("PR005", record(col))[0].severity.value == "critical"
    daily = line("a", "methotrexate", dosages=(dose(10, "mg", 1),))
    weekly = line("a", "methotrexate", dosages=(dose(10, "mg", 1, period_unit="wk"),))
    assert run("PR005", record(daily))[0].evidence["intakes_per_week"] == 7
    assert run("PR005", record(weekly)) == []
    assert run("PR005", record(line("a", "methotrexate", route="intraveineuse", dosages=(dose(10, "mg", 1),)))) == []


# --- accumulation ----------------------------------------------------------------------------

def test_three_sedatives_and_two_are_not_enough() -> None:
    f = run("PR006", record(line("a", "zolpidem"), line("b", "tramadol"), line("c", "hydroxyzine")))
    assert [x.evidence["class"] for x in f] == ["sedative"]
    assert run("PR006", record(line("a", "zolpidem"), line("b", "tramadol"))) == []


def test_accumulation_needs_a_common_day() -> None:
    a = line("a", "spironolactone", authored=date(2025, 9, 1), supply_days=30)
    b = line("b", "potassium")
    c = line("c", "ramipril")
    assert [x.evidence["class"] for x in run("PR006", record(a, b, c))] == []
    assert [x.evidence["class"] for x in run("PR006", record(line("a", "spironolactone"), b, c))] == ["hyperkalaemic"]


# --- loader ----------------------------------------------------------------------------------

def test_loader_names_file_and_line(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[1] / "referentials" / "iatrogenic" / "patient-risks.tsv"
    lines = src.read_text(encoding="utf-8").split("\n")
    bad = tmp_path / "patient-risks.tsv"
    bad.write_text("\n".join(lines[:3] + ["oops\tonly two"] + lines[3:]), encoding="utf-8")
    with pytest.raises(ValueError, match=r"patient-risks.tsv:4: expected 10"):
        load_rows(bad)
    rows = load_rows(src)
    assert all(r.source.label and r.source.url for r in rows)


def test_the_same_request_read_twice_is_not_a_duplicate() -> None:
    a = line("a", "paracetamol")
    twin = line("a", "paracetamol")
    assert run("DU001", record(a, twin)) == []
    assert run("IX001", record(line("x", "simvastatine"), line("x", "clarithromycine"))) == []
