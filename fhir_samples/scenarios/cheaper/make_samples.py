"""Regenerate the EQ rule samples and the cheaper-equivalent scenarios (FHIR R4 Bundles).

Run from the repository root: ``python fhir_samples/scenarios/cheaper/make_samples.py``. The
Bundles are small hand-written prescriptions; expectations carry no amounts (the tests recompute
every amount from the shipped referentials).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCEN = ROOT / "scenarios" / "cheaper"
RULES = ROOT / "rules"


def order(oid: str, text: str, *, dose: float = 1, unit: str = "{tbl}", per_day: int = 1, days: int | None = 90,
          authored: str = "2026-01-10", substitution: dict[str, Any] | None = None, status: str = "active",
          cip13: str | None = None) -> dict[str, Any]:
    med: dict[str, Any] = {"text": text}
    if cip13:
        med["coding"] = [{"system": "http://data.esante.gouv.fr/ansm/medicament/codeCIP13", "code": cip13}]
    repeat: dict[str, Any] = {"frequency": per_day, "period": 1, "periodUnit": "d"}
    if days:
        repeat["boundsDuration"] = {"value": days, "unit": "jours", "system": "http://unitsofmeasure.org", "code": "d"}
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest", "id": oid, "status": status, "intent": "order",
        "medicationCodeableConcept": med, "subject": {"reference": "Patient/p1"}, "authoredOn": authored,
        "dosageInstruction": [{
            "text": f"{dose:g} {unit} {per_day} fois par jour",
            "timing": {"repeat": repeat},
            "doseAndRate": [{"doseQuantity": {"value": dose, "unit": unit, "system": "http://unitsofmeasure.org",
                                              "code": unit}}],
        }],
    }
    if substitution is not None:
        res["substitution"] = substitution
    return res


def condition(cid: str, icd10: str, display: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": icd10, "display": display}]}}


def bundle(*resources: dict[str, Any], birth: str = "1960-05-04") -> dict[str, Any]:
    entries = [{"fullUrl": "urn:uuid:patient-p1",
                "resource": {"resourceType": "Patient", "id": "p1", "birthDate": birth, "gender": "female"}}]
    entries += [{"fullUrl": f"urn:uuid:{o['id']}", "resource": o} for o in resources]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


# LEVOTHYROX 100 µg is coded by its CIP13 (BDPM 30-tablet pack): the text alone does not resolve to one specialty.
LEVO_CIP13 = "3400930065891"
TAHOR28_CIP13 = "3400934306815"  # TAHOR 20 mg, 28 tablets
NS_NONE = {"allowedBoolean": False}
NS_MTE = {"allowedBoolean": False, "reason": {"coding": [{"code": "MTE", "display": "non substituable MTE"}],
                                              "text": "non substituable (MTE)"}}
NS_CIF = {"allowedBoolean": False, "reason": {"text": "non substituable (CIF)"}}


def write(path: Path, data: Any) -> None:
    """Write a sample (its patient named after the file, so that every sample of ``fhir_samples``
    is a patient of its own when the whole folder is checked at once) or an expectation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        folder = "cheaper" if path.parent == SCEN else path.parent.name.lower()
        new = f"{folder}-{path.stem}"[:64]
        data = renamed(data, {"p1": new, "Patient/p1": f"Patient/{new}", "urn:uuid:patient-p1": f"urn:uuid:patient-{new}"})
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def renamed(data: Any, names: dict[str, str]) -> Any:
    """``data`` with the Patient id and the references to it renamed (``names``: old → new)."""
    if isinstance(data, dict):
        out = {k: renamed(v, names) for k, v in data.items()}
        if data.get("resourceType") == "Patient" and data.get("id") in names:
            out["id"] = names[data["id"]]
        return out
    if isinstance(data, list):
        return [renamed(v, names) for v in data]
    if isinstance(data, str) and data.startswith(("Patient/", "urn:uuid:")):
        return names.get(data, data)
    return data


def main() -> None:
    tahor = order("mr-tahor", "TAHOR 20 mg, comprimé pelliculé")
    scenarios: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "tahor-20": (bundle(tahor), {"jurisdiction": "fr", "findings": [
            {"rule": "EQ001", "implicated": ["MedicationRequest/mr-tahor"], "severity": "info",
             "evidence": {"substance": "atorvastatine"}, "suggestion": {"saving": {"currency": "EUR", "period": "treatment"}}},
            {"rule": "EQ002", "implicated": ["MedicationRequest/mr-tahor"], "severity": "info"}]}),
        "crestor-10": (bundle(order("mr-crestor", "CRESTOR 10 mg, comprimé pelliculé", days=None)), {"findings": [
            {"rule": "EQ001", "evidence": {"substance": "rosuvastatine"},
             "suggestion": {"saving": {"currency": "EUR", "period": "year"}}},
            {"rule": "EQ002"}]}),
        "plavix-75": (bundle(order("mr-plavix", "PLAVIX 75 mg, comprimé pelliculé", days=30)), {"findings": [
            {"rule": "EQ001", "evidence": {"substance": "clopidogrel"},
             "suggestion": {"saving": {"currency": "EUR", "period": "treatment"}}},
            {"rule": "EQ002"}]}),
        "inexium-20": (bundle(order("mr-inexium", "INEXIUM 20 mg, comprimé gastro-résistant", days=28)), {"findings": [
            {"rule": "EQ001", "evidence": {"substance": "esomeprazole"}},
            {"rule": "EQ002"},
            {"rule": "EQ005", "evidence": {"strategy": "ipp-equivalent-moins-cher", "dose_level": "demi-dose"}}]}),
        "lantus-initiation": (bundle(order("mr-lantus", "LANTUS SOLOSTAR 100 unités/ml, solution injectable en stylo prérempli",
                                           dose=20, unit="U", days=None)), {"findings": [
            {"rule": "EQ004", "evidence": {"substance": "insuline glargine"},
             "suggestion": {"saving": {"currency": "EUR", "period": "year"}}}]}),
        "atorvastatine-dci": (bundle(order("mr-atorva", "atorvastatine 20 mg, comprimé")), {"findings": []}),
        "levothyroxine-ns-mte": (bundle(order("mr-levo", "LEVOTHYROX 100 microgrammes, comprimé sécable", days=None, cip13=LEVO_CIP13,
                                              substitution=NS_MTE)), {"findings": []}),
        "levothyroxine-ns-missing": (bundle(order("mr-levo", "LEVOTHYROX 100 microgrammes, comprimé sécable", days=None, cip13=LEVO_CIP13,
                                                  substitution=NS_NONE)), {"findings": [
            {"rule": "EQ003", "severity": "warning", "evidence": {"problem": "missing", "substance": "levothyroxine"}}]}),
        "tahor-20-ma": (bundle(tahor), {"jurisdiction": "ma", "findings": [
            {"rule": "EQ001", "evidence": {"substance": "atorvastatine", "jurisdiction": "ma"},
             "suggestion": {"saving": {"currency": "MAD", "period": "treatment"}}}]}),
    }
    # The non-substitutable scenarios also list EQ002 (brand name only): selected rules are given per scenario.
    select = {"levothyroxine-ns-mte": ["EQ001", "EQ003"], "levothyroxine-ns-missing": ["EQ001", "EQ003"]}
    for name, (b, exp) in scenarios.items():
        exp = {"as_of": "2026-01-15", "jurisdiction": "fr", **exp, "select": select.get(name, ["EQ"])}
        write(SCEN / f"{name}.json", b)
        write(SCEN / f"{name}.expect", exp)

    # Rule samples (run by tests/test_rule_samples.py with select=[RULE]).
    write(RULES / "EQ001" / "fail-tahor-20.json", bundle(tahor))
    write(RULES / "EQ001" / "fail-tahor-20.expect", {"findings": [
        {"implicated": ["MedicationRequest/mr-tahor"], "severity": "info", "category": "cheaper-equivalent",
         "evidence": {"substance": "atorvastatine"}, "suggestion": {"saving": {"currency": "EUR"}}}]})
    write(RULES / "EQ001" / "fail-tahor-20-ma.json", bundle(tahor))
    write(RULES / "EQ001" / "fail-tahor-20-ma.expect", {"jurisdiction": "ma", "findings": [
        {"evidence": {"substance": "atorvastatine", "jurisdiction": "ma"}, "suggestion": {"saving": {"currency": "MAD"}}}]})
    write(RULES / "EQ001" / "pass-atorvastatine-dci.json", bundle(order("mr-atorva", "atorvastatine 20 mg, comprimé")))
    write(RULES / "EQ001" / "pass-already-cheapest.json",
          bundle(order("mr-almus", "ATORVASTATINE ALMUS PHARMA 20 mg, comprimé pelliculé")))
    write(RULES / "EQ001" / "pass-tahor-non-substituable.json",
          bundle(order("mr-tahor", "TAHOR 20 mg, comprimé pelliculé", substitution=NS_CIF)))
    write(RULES / "EQ002" / "fail-crestor-brand.json", bundle(order("mr-crestor", "CRESTOR 10 mg, comprimé pelliculé")))
    write(RULES / "EQ002" / "pass-atorvastatine-dci.json", bundle(order("mr-atorva", "atorvastatine 20 mg, comprimé")))
    write(RULES / "EQ003" / "fail-levothyrox-no-justification.json",
          bundle(order("mr-levo", "LEVOTHYROX 100 microgrammes, comprimé sécable", cip13=LEVO_CIP13, substitution=NS_NONE)))
    write(RULES / "EQ003" / "fail-tahor-mte-not-listed.json",
          bundle(order("mr-tahor", "TAHOR 20 mg, comprimé pelliculé", substitution=NS_MTE)))
    write(RULES / "EQ003" / "fail-tahor-mte-not-listed.expect",
          {"findings": [{"evidence": {"problem": "MTE-not-listed", "substance": "atorvastatine"}}]})
    write(RULES / "EQ003" / "pass-levothyrox-mte.json",
          bundle(order("mr-levo", "LEVOTHYROX 100 microgrammes, comprimé sécable", cip13=LEVO_CIP13, substitution=NS_MTE)))
    write(RULES / "EQ003" / "pass-tahor-cif.json",
          bundle(order("mr-tahor", "TAHOR 20 mg, comprimé pelliculé", substitution=NS_CIF)))
    ns_efg = {"allowedBoolean": False, "reason": {"coding": [{"code": "EFG"}], "text": "non substituable (EFG)"}}
    write(RULES / "EQ003" / "fail-efg-adult.json",
          bundle(order("mr-tahor", "TAHOR 20 mg, comprimé pelliculé", substitution=ns_efg)))
    write(RULES / "EQ003" / "fail-efg-adult.expect", {"findings": [{"evidence": {"problem": "EFG-age"}}]})
    write(RULES / "EQ003" / "pass-efg-child-under-6.json",
          bundle(order("mr-tahor", "TAHOR 20 mg, comprimé pelliculé", substitution=ns_efg), birth="2022-03-01"))
    write(RULES / "EQ002" / "pass-brand-with-dci.json",
          bundle(order("mr-tahor", "TAHOR 20 mg (atorvastatine), comprimé pelliculé")))
    lantus = order("mr-lantus", "LANTUS SOLOSTAR 100 unités/ml, solution injectable en stylo prérempli", dose=20,
                   unit="U", days=None)
    write(RULES / "EQ004" / "fail-lantus-initiation.json", bundle(lantus))
    earlier = order("mr-lantus-2025", "LANTUS SOLOSTAR 100 unités/ml, solution injectable en stylo prérempli", dose=18,
                    unit="U", days=None, authored="2025-06-01", status="completed")
    write(RULES / "EQ004" / "pass-lantus-continuation.json", bundle(earlier, lantus))

    # EQ005: cheaper strategies.
    hta = condition("c-hta", "I10", "Hypertension essentielle")
    sartan = order("mr-valsartan", "valsartan 80 mg, comprimé", days=None)
    write(RULES / "EQ005" / "fail-sartan-initiation-hta.json", bundle(hta, sartan))
    write(RULES / "EQ005" / "fail-sartan-initiation-hta.expect", {"findings": [
        {"evidence": {"strategy": "hta-iec-before-sartan", "substance": "valsartan"},
         "suggestion": {"with": {"atc": "C09AA"}}}]})
    write(RULES / "EQ005" / "pass-sartan-heart-failure.json",
          bundle(hta, condition("c-ic", "I50.0", "Insuffisance cardiaque congestive"), sartan))
    earlier_iec = order("mr-ramipril", "ramipril 5 mg, comprimé", days=None, authored="2025-03-01", status="stopped")
    write(RULES / "EQ005" / "pass-sartan-after-iec.json", bundle(hta, earlier_iec, sartan))
    write(RULES / "EQ005" / "fail-esomeprazole-half-dose.json",
          bundle(order("mr-eso", "ésoméprazole 20 mg, gélule gastro-résistante", days=28)))
    write(RULES / "EQ005" / "fail-esomeprazole-half-dose.expect", {"findings": [
        {"evidence": {"strategy": "ipp-equivalent-moins-cher", "dose_level": "demi-dose"},
         "suggestion": {"saving": {"currency": "EUR", "period": "treatment"}}}]})
    ppi = order("mr-ppi", "oméprazole 10 mg, gélule gastro-résistante", days=5)
    nsaid = order("mr-ains", "ibuprofène 400 mg, comprimé", per_day=3, days=5)
    write(RULES / "EQ005" / "fail-ppi-short-nsaid-low-risk.json", bundle(ppi, nsaid, birth="1990-02-02"))
    write(RULES / "EQ005" / "fail-ppi-short-nsaid-low-risk.expect", {"findings": [
        {"evidence": {"strategy": "ipp-avec-ains-sans-risque"}, "suggestion": {"action": "remove"}}]})
    write(RULES / "EQ005" / "pass-ppi-nsaid-older-patient.json", bundle(ppi, nsaid, birth="1950-02-02"))
    aspirin = order("mr-kardegic", "acide acétylsalicylique 75 mg, poudre pour solution buvable en sachet", days=None)
    write(RULES / "EQ005" / "pass-ppi-nsaid-with-antiplatelet.json", bundle(ppi, nsaid, aspirin, birth="1990-02-02"))
    write(RULES / "EQ005" / "fail-large-pack-six-months.json",
          bundle(order("mr-tahor28", "TAHOR 20 mg, comprimé pelliculé", days=180, cip13=TAHOR28_CIP13)))
    write(RULES / "EQ005" / "fail-large-pack-six-months.expect", {"findings": [
        {"evidence": {"strategy": "grand-conditionnement"}, "suggestion": {"replace": {"cip13": TAHOR28_CIP13}}}]})
    write(RULES / "EQ005" / "pass-large-pack-one-month.json",
          bundle(order("mr-tahor28", "TAHOR 20 mg, comprimé pelliculé", days=28, cip13=TAHOR28_CIP13)))


if __name__ == "__main__":
    main()
