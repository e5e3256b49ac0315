"""Kidney function: Cockcroft–Gault, creatinine units, and every renal threshold just above / below."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from checker import check
from checker.drugs import drug_index, identify_text
from checker.facts import cockcroft_gault, creatinine_mg_dl
from checker.referentials import default_referentials

RULES = default_referentials().get("iatrogenic-rules")


# Cockcroft DW, Gault MH. Prediction of creatinine clearance from serum creatinine. Nephron
# 1976;16(1):31-41, doi 10.1159/000180580. The paper's abstract (read 2026-12-05 in a copy of the
# paper, https://www.scribd.com/document/519107434/Cock-Croft-1976) gives, for adult men,
# (140 - age) x weight (kg) / (72 x serum creatinine in mg/100 mL), and 15 % less for women. No worked
# example of the paper (nor of an ANSM/HAS document or SmPC) could be read, so the examples below were
# worked by hand from that formula with round figures, so that each expected clearance is exact:
# (age, kg, mg/dL, female) -> mL/min.
WORKED = [
    (40, 72, 1.0, False, 100.0),   # 100 x 72 / 72
    (40, 72, 1.0, True, 85.0),     # the same woman: x 0.85
    (80, 60, 2.0, False, 25.0),    # 60 x 60 / 144
    (80, 60, 2.0, True, 21.25),
    (68, 50, 0.5, False, 100.0),   # 72 x 50 / 36
    (104, 90, 1.5, True, 25.5),    # 36 x 90 / 108 x 0.85
]


@pytest.mark.parametrize("age, kg, scr, female, expected", WORKED)
def test_cockcroft_gault_matches_the_worked_examples(age: int, kg: float, scr: float, female: bool, expected: float) -> None:
    assert cockcroft_gault(age, kg, scr, female) == pytest.approx(expected, abs=1e-9)


def test_cockcroft_gault_from_micromoles_uses_the_converted_creatinine() -> None:
    """88.4 µmol/L is 1 mg/dL: the first worked example again, from a French laboratory's unit."""
    scr = creatinine_mg_dl(88.4, "µmol/L")
    assert scr is not None and cockcroft_gault(40, 72, scr, False) == pytest.approx(100.0, abs=1e-9)


@pytest.mark.parametrize("value, unit", [(1.2, "mg/dL"), (12, "mg/L"), (106.08, "umol/L"), (106.08, "µmol/L"),
                                         (0.10608, "mmol/L")])
def test_creatinine_units_are_converted_to_mg_per_dl(value: float, unit: str) -> None:
    got = creatinine_mg_dl(value, unit)
    assert got is not None and abs(got - 1.2) < 1e-9


def test_an_unreadable_creatinine_unit_is_not_guessed() -> None:
    assert creatinine_mg_dl(1.2, "g/dL") is None and creatinine_mg_dl(1.2, "") is None


def _obs(pid: str, n: int, code: str, value: float, unit: str, day: str = "2026-01-02") -> dict[str, Any]:
    return {"resource": {"resourceType": "Observation", "id": f"{pid}-o{n}", "status": "final",
                         "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                         "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": day,
                         "valueQuantity": {"value": value, "unit": unit}}}


def _bundle(tmp: Path, pid: str, label: str, observations: list[dict[str, Any]], *, gender: str = "female",
            birth: str | None = "1950-06-01") -> str:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": pid, "gender": gender}
    if birth:
        patient["birthDate"] = birth
    entries = [{"resource": patient}, {"resource": {
        "resourceType": "MedicationRequest", "id": f"{pid}-m", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"text": label}, "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": "2026-01-05",
        "dispenseRequest": {"expectedSupplyDuration": {"value": 10, "unit": "d"}}}}, *observations]
    path = tmp / f"{pid}.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}), encoding="utf-8")
    return str(path)


def _pr003(path: str) -> list[Any]:
    report = check([path], as_of="2026-01-15", select=["PR003"])
    assert not report.errors
    return [f for f in report.findings if f.rule == "PR003"]


def _flagged(findings: list[Any]) -> set[str]:
    return {c["criterion"] for f in findings for c in f.evidence.get("criteria", []) if "renal" in f.evidence}


def _label_for(keys: tuple[str, ...], atc: tuple[str, ...]) -> str | None:
    """A label the identifier reads as one substance the row concerns."""
    idx = drug_index()
    candidates = list(keys) + sorted(k for p in atc for k in idx.substances_with_atc(p))
    for key in candidates:
        name = idx.display_name(key)
        ident = identify_text(name)
        if ident is not None and len(ident.substances) == 1 and ident.substances[0].key == key:
            if not atc or any(a.startswith(p) for a in ident.substances[0].atc for p in atc):
                return name
    return None


def _thresholds() -> list[Any]:
    """Every renal threshold shipped: the rows of patient-risks.tsv and each STOPP section E criterion."""
    out = []
    for row in RULES.kind("renal"):
        out.append(pytest.param(row.id, row.keys, row.atc, float(row.params["below"]), id=row.id))
    for rid in RULES.stopp_selection("renal"):
        for it in RULES.stopp["rules"][rid]["iterations"]:
            if it["egfr"]:
                med = it["medicines"][0]
                out.append(pytest.param(rid, (), tuple(med["atc"]), float(it["egfr"]["value"]), id=rid))
                break
    return out


@pytest.mark.parametrize("loinc, unit", [("62238-1", "mL/min/{1.73_m2}"), ("2164-2", "mL/min")], ids=["egfr", "clcr"])
@pytest.mark.parametrize("criterion, keys, atc, below", _thresholds())
def test_each_renal_threshold_just_above_and_just_below(criterion: str, keys: tuple[str, ...], atc: tuple[str, ...],
                                                        below: float, loinc: str, unit: str, tmp_path: Path) -> None:
    """An eGFR, then a measured creatinine clearance, one unit under the threshold flags the
    criterion; one unit over does not; the patient is 75 (every row applies from 65 at most)."""
    label = _label_for(keys, atc)
    assert label, f"{criterion}: no identifiable drug in the index"
    under = _pr003(_bundle(tmp_path, "under", label, [_obs("under", 1, loinc, below - 1, unit)]))
    over = _pr003(_bundle(tmp_path, "over", label, [_obs("over", 1, loinc, below + 1, unit)]))
    assert criterion in _flagged(under), (criterion, label, [f.summary for f in under])
    assert criterion not in _flagged(over), (criterion, label, [f.summary for f in over])


INCLUSIVE = [pytest.param(r.id, r.keys, r.atc, float(r.params["below"]), id=r.id)
             for r in RULES.kind("renal") if r.params.get("inclusive")]


@pytest.mark.parametrize("criterion, keys, atc, below", INCLUSIVE)
def test_an_inclusive_threshold_flags_the_clearance_equal_to_it(criterion: str, keys: tuple[str, ...],
                                                               atc: tuple[str, ...], below: float, tmp_path: Path) -> None:
    """Rows whose source says "≤ N" or "N to M mL/min" (Beers: levetiracetam ≤ 80, edoxaban and
    rivaroxaban 15-50) flag a clearance equal to N; half a unit over it does not."""
    label = _label_for(keys, atc)
    assert label
    at = _pr003(_bundle(tmp_path, "at", label, [_obs("at", 1, "62238-1", below, "mL/min/{1.73_m2}")]))
    over = _pr003(_bundle(tmp_path, "over", label, [_obs("over", 1, "62238-1", below + 0.5, "mL/min/{1.73_m2}")]))
    assert criterion in _flagged(at), (criterion, [f.summary for f in at])
    assert criterion not in _flagged(over), (criterion, [f.summary for f in over])


def test_the_beers_kidney_table_is_complete() -> None:
    """Every drug of the AGS Beers 2023 kidney table that is marketed in France has a row (dofetilide,
    not in the BDPM, is left out); tiered drugs carry both their avoid and reduce-dose thresholds."""
    rows = {r.id: r for r in RULES.kind("renal") if r.id.startswith("beers-")}
    wanted = {"amiloride", "baclofen", "celecoxib", "cimetidine", "ciprofloxacin", "nitrofurantoin", "cotrimoxazole-avoid",
              "cotrimoxazole-reduce", "dabigatran", "edoxaban-avoid", "edoxaban-reduce", "enoxaparin", "fondaparinux",
              "rivaroxaban-avoid", "rivaroxaban-reduce", "spironolactone", "triamterene", "duloxetine", "gabapentin",
              "levetiracetam", "nsaid", "pregabalin", "tramadol", "famotidine", "nizatidine", "colchicine", "probenecid"}
    assert {f"beers-{w}" for w in wanted} <= set(rows)
    assert all(r.params["action"] in {"avoid", "reduce-dose"} and r.params["min_age"] == 65 for r in rows.values())
    for drug, avoid, reduce in (("edoxaban", 15, 50), ("rivaroxaban", 15, 50), ("cotrimoxazole", 15, 30)):
        assert rows[f"beers-{drug}-avoid"].params["below"] == avoid and rows[f"beers-{drug}-reduce"].params["below"] == reduce


@pytest.mark.parametrize("criterion, keys, atc, below", _thresholds())
def test_each_renal_threshold_through_cockcroft_gault(criterion: str, keys: tuple[str, ...], atc: tuple[str, ...],
                                                      below: float, tmp_path: Path) -> None:
    """With no eGFR, the clearance computed from creatinine (µmol/L), weight, age and sex is judged
    against the same thresholds: a creatinine chosen for a clearance 2 mL/min under, then over."""
    label = _label_for(keys, atc)
    assert label
    age, kg = 75, 60.0  # birth 1950-06-01, judged 2026-01-05
    for pid, target, expect in (("cgunder", below - 2, True), ("cgover", below + 2, False)):
        scr_mg_dl = (140 - age) * kg * 0.85 / (72 * target)
        obs = [_obs(pid, 1, "14682-9", round(scr_mg_dl * 88.4, 3), "umol/L"), _obs(pid, 2, "29463-7", kg, "kg")]
        found = _pr003(_bundle(tmp_path, pid, label, obs))
        assert (criterion in _flagged(found)) is expect, (criterion, target, [f.summary for f in found])
        if expect:
            f = next(f for f in found if "renal" in f.evidence)
            assert f.evidence["renal"]["kind"] == "cockcroft-gault"


@pytest.mark.parametrize("drop, missing", [("weight", ["weight"]), ("creatinine", ["creatinine"]),
                                           ("birth", ["age"]), ("sex", ["sex"])])
def test_the_missing_datum_is_named(drop: str, missing: list[str], tmp_path: Path) -> None:
    """No eGFR and one datum of Cockcroft–Gault lacking: an info finding names it (no all-clear)."""
    obs = []
    if drop != "creatinine":
        obs.append(_obs("miss", 1, "2160-0", 2.5, "mg/dL"))
    if drop != "weight":
        obs.append(_obs("miss", 2, "29463-7", 60, "kg"))
    path = _bundle(tmp_path, "miss", "Colchicine 1 mg comprimé", obs, gender="unknown" if drop == "sex" else "female",
                   birth=None if drop == "birth" else "1950-06-01")
    found = _pr003(path)
    assert [f.evidence.get("missing_for_cockcroft_gault") for f in found] == [missing], [f.summary for f in found]


def test_a_recorded_egfr_wins_over_cockcroft_gault(tmp_path: Path) -> None:
    obs = [_obs("both", 1, "62238-1", 45, "mL/min/{1.73_m2}"), _obs("both", 2, "2160-0", 5.0, "mg/dL"),
           _obs("both", 3, "29463-7", 60, "kg")]
    found = _pr003(_bundle(tmp_path, "both", "Colchicine 1 mg comprimé", obs))
    assert not any(f.evidence.get("renal", {}).get("kind") == "cockcroft-gault" for f in found)


def test_a_row_that_states_its_threshold_is_not_given_it_twice() -> None:
    """The renal rows' labels state their own threshold ("< 30 mL/min"); the "renal function not
    recorded" detail lists them as they are, without a second "< 30" (STOPP criteria, whose words
    name no figure, keep theirs)."""
    from checker import check
    from tests.conftest import SAMPLES

    report = check(str(SAMPLES / "rules" / "OP002" / "pass-pantoprazole-ains-sujet-age.json"), as_of="2026-01-15")
    details = [f.detail for f in report.findings if f.rule == "PR003"]
    assert details, "the sample has an NSAID without a recorded renal function"
    for detail in details:
        assert "mL/min (à éviter : insuffisance rénale aiguë) <" not in detail, detail
        assert "AINS < 50" in detail  # the STOPP criterion keeps its figure


# --- Cockcroft–Gault constants are data, with their source ----------------------------------------

def test_the_cockcroft_gault_constants_are_data_with_their_source() -> None:
    """The formula's figures (140, 72, × 0.85 for a woman: "15 % less in females") and the weight it
    takes live in referentials/facts/clinical-facts.json, cited to the paper (Nephron 1976)."""
    cg = default_referentials().get("clinical-facts").cockcroft_gault
    assert (cg.age_from, cg.divisor, cg.female_factor) == (140, 72, 0.85)
    assert cg.creatinine_unit == "mg/dL" and cg.weight == "actual"
    assert "Nephron" in cg.source and "10.1159/000180580" in cg.source


def test_the_estimate_is_computed_with_the_tables_constants() -> None:
    """kidney_function_on reads the constants from the tables it is given, not from code."""
    from dataclasses import replace

    from checker.facts import kidney_function_on
    from checker.model import Coding, Concept, Observation
    from tests.test_iatro_support import line, record

    def obs(code: str, value: float, unit: str) -> Observation:
        return Observation(ref=f"Observation/{code}", code=Concept((Coding("http://loinc.org", code),)), value=value,
                           unit=unit, effective=date(2026, 1, 2))

    tables = default_referentials().get("clinical-facts")
    rec = record(line("a", "colchicine"), birth=date(1950, 6, 1),
                 observations=(obs("2160-0", 1.0, "mg/dL"), obs("29463-7", 72, "kg")))
    day = date(2026, 1, 5)  # 75 years old: (140 - 75) x 72 / (72 x 1.0) x 0.85 = 55.25
    assert kidney_function_on(rec, day, tables).value == pytest.approx(55.2, abs=0.06)
    halved = replace(tables, cockcroft_gault=replace(tables.cockcroft_gault, female_factor=0.5))
    assert kidney_function_on(rec, day, halved).value == pytest.approx(32.5, abs=0.06)


# --- STOPP v2 section E: every criterion encoded, each sampled by eGFR and by CKD stage ------------

def _stopp_e_shared(shared: Path) -> dict[str, float]:
    """Each STOPP E criterion of the shared STOPP/START v2 text with its eGFR threshold."""
    import re
    import xml.etree.ElementTree as ET

    root = ET.parse(shared / "data" / "stopp-start-v2" / "stoppstart_v2.xml").getroot()
    out: dict[str, float] = {}
    for rule in root.iter():
        if rule.tag.endswith("rule") and (rule.get("id") or "").startswith("STOPP E"):
            text = " ".join(d.text or "" for d in rule if d.tag.endswith("description") and d.get("language") == "en")
            m = re.search(r"eGFR\s*<\s*(\d+)", text)
            assert m, (rule.get("id"), text)
            out[str(rule.get("id"))] = float(m.group(1))
    return out


def test_every_stopp_section_e_criterion_is_encoded_with_its_threshold(shared_dir: Path) -> None:
    """Read from the STOPP/START v2 text (optional corpus): E1–E6, each evaluated by PR003 with the
    eGFR threshold its wording states."""
    shared = _stopp_e_shared(shared_dir)
    assert sorted(shared) == [f"STOPP E{n}" for n in range(1, 7)]
    selected = RULES.stopp_selection("renal")
    encoded = {rid: next(it["egfr"]["value"] for it in RULES.stopp["rules"][rid]["iterations"] if it["egfr"])
               for rid in selected}
    assert encoded == shared


def _stopp_e_stages() -> list[Any]:
    out = []
    for rid in RULES.stopp_selection("renal"):
        its = RULES.stopp["rules"][rid]["iterations"]
        stages = sorted({c for it in its for c in it["ckd_icd10"]})
        atc = next(m["atc"][0] for it in its for m in it["medicines"])
        out.append(pytest.param(rid, atc, stages, id=rid))
    return out


@pytest.mark.parametrize("criterion, atc, stages", _stopp_e_stages())
def test_each_stopp_e_criterion_by_ckd_stage(criterion: str, atc: str, stages: list[str]) -> None:
    """No eGFR recorded: each CKD stage the criterion lists flags it; the stage just milder does not
    (it names the missing renal function instead)."""
    from tests.test_iatro_support import condition, dose, line, record, run

    assert stages, criterion
    dosages = (dose(0.25, "mg", 1),) if criterion == "STOPP E1" else ()  # E1: digoxin above 125 µg/day
    order = line("a", "x", atc=(atc,), dosages=dosages)
    for stage in stages:
        found = run("PR003", record(order, birth=date(1950, 6, 1), conditions=(condition(stage),)))
        assert [c["criterion"] for f in found for c in f.evidence["criteria"] if "ckd" in f.evidence] == [criterion], \
            (stage, [f.evidence for f in found])
    milder = f"N18.{int(min(stages)[-1]) - 1}"
    found = run("PR003", record(order, birth=date(1950, 6, 1), conditions=(condition(milder),)))
    assert not any("ckd" in f.evidence for f in found) and [f.evidence.get("missing") for f in found] == ["egfr"]


def test_the_threshold_samples_cover_every_row_of_the_table() -> None:
    """The generators above read the table: every renal row of patient-risks.tsv and every renal
    STOPP criterion of the selection gets its just-above / just-below samples."""
    sampled = {p.values[0] for p in _thresholds()}
    wanted = {r.id for r in RULES.kind("renal")} | set(RULES.stopp_selection("renal"))
    assert sampled == wanted and len(wanted) >= 34


AGED = [pytest.param(r.id, r.keys, r.atc, float(r.params["below"]), int(r.params["min_age"]), id=r.id)
        for r in RULES.kind("renal") if "min_age" in r.params]


@pytest.mark.parametrize("criterion, keys, atc, below, min_age", AGED)
def test_each_aged_renal_row_applies_from_its_own_age(criterion: str, keys: tuple[str, ...], atc: tuple[str, ...],
                                                      below: float, min_age: int, tmp_path: Path) -> None:
    """A clearance under the row's threshold flags it from the row's ``min_age`` (the Beers table is
    written for people 65 and older), not a year before."""
    label = _label_for(keys, atc)
    assert label
    flagged = {}
    for age in (min_age - 1, min_age):
        birth = f"{2025 - age}-06-01"  # that age on 2026-01-05 and on 2026-01-15
        pid = f"age{age}"
        found = _pr003(_bundle(tmp_path, pid, label, [_obs(pid, 1, "2164-2", below - 1, "mL/min")], birth=birth))
        flagged[age] = criterion in _flagged(found)
    assert flagged == {min_age - 1: False, min_age: True}, flagged
