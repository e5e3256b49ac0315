"""EQ005 and fixed-dose combinations: a strategy written for one class of single agent ("a sartan
alone") must not fire for a combination product through one of its components, and a strategy
written for a combination class (sartan + diuretic, ATC C09DA) must reach the combination products.

Run over the whole shipped BDPM: every multi-substance specialty with a sartan (C09CA) or an ACE
inhibitor (C09AA) among its components, and every single-substance sartan, each started alone in
a hypertensive patient (I10) with nothing else in the record.
"""

from __future__ import annotations

from typing import Any

import pytest

from checker import check
from checker.drugs import drug_index, identify
from checker.drugs.index import DrugIndex, Specialty
from checker.model import Coding, Concept, MedicationOrder

ALONE = "hta-iec-before-sartan"
COMBINATION = "hta-iec-before-sartan-combination"
CIS_SYSTEM = "http://data.esante.gouv.fr/ansm/medicament/codeCIS"


def _component_codes(idx: DrugIndex, spec: Specialty) -> set[str]:
    return {a for k in spec.substance_keys for a in (idx.substances[k].atc if k in idx.substances else ())}


def _has(codes: set[str], prefix: str) -> bool:
    return any(a.startswith(prefix) for a in codes)


def _bundle(cis: str) -> dict[str, Any]:
    pid = f"p{cis}"
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": pid, "birthDate": "1962-03-01", "gender": "male"}},
        {"resource": {"resourceType": "Condition", "id": f"c{cis}", "subject": {"reference": f"Patient/{pid}"},
                      "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                     "code": "active"}]},
                      "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]}}},
        {"resource": {"resourceType": "MedicationRequest", "id": f"m{cis}", "status": "active", "intent": "order",
                      "subject": {"reference": f"Patient/{pid}"}, "authoredOn": "2026-01-10",
                      "medicationCodeableConcept": {"coding": [{"system": CIS_SYSTEM, "code": cis}]},
                      "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                                             "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "{tbl}"}}]}]}},
    ]}


@pytest.fixture(scope="module")
def products() -> dict[str, list[Specialty]]:
    idx = drug_index()
    combos, alone = [], []
    for spec in sorted(idx.specialties.values()):
        codes = _component_codes(idx, spec)
        if len(spec.substance_keys) > 1 and (_has(codes, "C09CA") or _has(codes, "C09AA")):
            combos.append(spec)
        elif len(spec.substance_keys) == 1 and _has(codes, "C09CA"):
            alone.append(spec)
    return {"combos": combos, "alone": alone}


@pytest.fixture(scope="module")
def strategies(products: dict[str, list[Specialty]]) -> dict[str, set[str]]:
    """Strategy ids EQ005 gives each product (by CIS), each started alone in a patient with I10."""
    specs = products["combos"] + products["alone"]
    report = check([_bundle(s.cis) for s in specs], as_of="2026-01-15", select=["EQ005"])
    found: dict[str, set[str]] = {s.cis: set() for s in specs}
    for f in report.findings:
        assert f.patient is not None
        found[f.patient.removeprefix("Patient/").removeprefix("p")].add(f.evidence.get("strategy", ""))
    return found


def test_the_whole_referential_is_covered(products: dict[str, list[Specialty]]) -> None:
    idx = drug_index()
    sartan_diuretics = [s for s in products["combos"] if _sartan_diuretic(idx, s)]
    assert len(products["combos"]) > 300 and len(sartan_diuretics) > 100 and len(products["alone"]) > 100


def _sartan_diuretic(idx: DrugIndex, spec: Specialty) -> bool:
    """Exactly two active substances: a sartan (C09CA) and a diuretic (C03)."""
    codes = _component_codes(idx, spec)
    keys = spec.substance_keys
    return (len(keys) == 2 and _has(codes, "C09CA") and _has(codes, "C03")
            and all(idx.substances[k].atc for k in keys if k in idx.substances))


def test_no_combination_gets_the_single_agent_strategy(products: dict[str, list[Specialty]],
                                                       strategies: dict[str, set[str]]) -> None:
    wrong = [f"{s.cis} {s.name}" for s in products["combos"] if ALONE in strategies[s.cis]]
    assert not wrong, f"{len(wrong)} combinations advised an ACE inhibitor alone, e.g. {wrong[:5]}"


def test_every_sartan_diuretic_combination_gets_the_combination_strategy(
        products: dict[str, list[Specialty]], strategies: dict[str, set[str]]) -> None:
    idx = drug_index()
    missed = [f"{s.cis} {s.name}" for s in products["combos"]
              if _sartan_diuretic(idx, s) and COMBINATION not in strategies[s.cis]]
    assert not missed, f"{len(missed)} sartan + diuretic combinations without the combination strategy: {missed[:5]}"


def test_other_combinations_get_neither_hypertension_strategy(
        products: dict[str, list[Specialty]], strategies: dict[str, set[str]]) -> None:
    """A sartan with a calcium channel blocker, an ACE inhibitor combination: neither strategy is written
    for them (the combination strategy names the sartan + diuretic class C09DA alone)."""
    idx = drug_index()
    wrong = [f"{s.cis} {s.name}" for s in products["combos"]
             if not _sartan_diuretic(idx, s) and strategies[s.cis] & {ALONE, COMBINATION}]
    assert not wrong, wrong[:5]


def test_single_sartans_still_get_the_single_agent_strategy(products: dict[str, list[Specialty]],
                                                            strategies: dict[str, set[str]]) -> None:
    missed = [f"{s.cis} {s.name}" for s in products["alone"] if ALONE not in strategies[s.cis]]
    assert not missed, f"{len(missed)} single sartans without the strategy: {missed[:5]}"
    assert not any(COMBINATION in strategies[s.cis] for s in products["alone"])


def test_a_combination_line_carries_its_own_class() -> None:
    """Identified by CIS, a combination carries its components' codes and the combination's own code;
    a single substance has no combination code."""
    idx = drug_index()
    for spec in sorted(idx.specialties.values()):
        if len(spec.substance_keys) > 1 and any(a.startswith("C09DA") for a in spec.atc):
            break
    else:
        pytest.fail("no C09DA specialty in the BDPM")
    order = MedicationOrder(ref="MedicationRequest/m", status="active", intent="order",
                            medication=Concept(codings=(Coding(CIS_SYSTEM, spec.cis),)))
    ident = identify(order)
    assert set(spec.atc) <= set(ident.product_atc)
    assert _has(set(ident.atc_codes), "C09CA") and _has(set(ident.atc_codes), "C03")
    assert set(ident.class_atc) == set(ident.product_atc)


def test_combinations_written_in_dci_get_the_combination_strategy(products: dict[str, list[Specialty]]) -> None:
    """The same in DCI ("valsartan/hydrochlorothiazide"): every sartan + diuretic pair of the BDPM,
    identified without a product, gets the combination strategy and never the single-agent one."""
    idx = drug_index()
    pairs = sorted({tuple(sorted(s.substance_keys)) for s in products["combos"] if _sartan_diuretic(idx, s)})
    assert len(pairs) >= 5
    bundles = []
    for n, pair in enumerate(pairs):
        bundle = _bundle(f"dci{n}")
        request = bundle["entry"][2]["resource"]
        request["medicationCodeableConcept"] = {"text": "/".join(idx.display_name(k) for k in pair)}
        bundles.append(bundle)
    report = check(bundles, as_of="2026-01-15", select=["EQ005"])
    given: dict[str, set[str]] = {f"dci{n}": set() for n in range(len(pairs))}
    for f in report.findings:
        given[(f.patient or "").removeprefix("Patient/p")].add(f.evidence.get("strategy", ""))
    assert all(found == {COMBINATION} for found in given.values()), {pairs[int(k[3:])]: v for k, v in given.items()
                                                                    if v != {COMBINATION}}
