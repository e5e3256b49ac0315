"""Clinical scenarios of issue 8 (fhir_samples/scenarios/iatrogenic): FHIR bundles with expected findings.

Each ``<name>.json`` has a ``<name>.expect``: ``as_of``, ``select`` (rule ids or prefixes) and
``findings``, matched one-to-one on the fields each expected finding lists (nested dicts as
subsets). Also the HL7 PDDI-CDS requests from ../shared (corpus part, skipped when absent).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import match_one_to_one
from checker.api import check

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "fhir_samples" / "scenarios" / "iatrogenic"
PDDI = ROOT.parent / "shared" / "fhir" / "pddi-cds" / "requests"
CASES = sorted(SCENARIOS.glob("*.json"))


def test_every_acceptance_scenario_is_present() -> None:
    names = {p.stem for p in CASES}
    for pair in ("simvastatine-clarithromycine", "warfarine-ibuprofene", "sildenafil-isosorbide-dinitrate",
                 "colchicine-clarithromycine", "clopidogrel-aspirine", "citalopram-hydroxyzine",
                 "spironolactone-potassium-chlorure", "tramadol-sertraline"):
        assert pair in names and f"{pair}-non-overlapping" in names
    for other in ("clopidogrel-aspirine-syndrome-coronarien", "simvastatine-clarithromycine-annulee",
                  "clopidogrel-omeprazole", "digoxine-ciclosporine", "doliprane-ixprim",
                  "benzodiazepine-demi-vie-longue-82-ans", "metformine-dfg-25", "allergie-penicilline-amoxicilline"):
        assert other in names


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_scenario(path: Path) -> None:
    expect = json.loads(path.with_name(path.stem + ".expect").read_text(encoding="utf-8"))
    report = check(str(path), as_of=expect["as_of"], select=expect["select"])
    assert not report.errors, report.errors
    actual = [f.to_dict() for f in report.findings]
    problems = match_one_to_one(expect["findings"], actual)
    assert not problems, "\n".join(problems)


WARFARIN_NSAID = ["warfarin-nsaids-order-select-coordination.json", "warfarin-nsaids-order-select-no-coordination.json",
                  "warfarin-nsaids-order-sign-coordination.json", "warfarin-nsaids-order-sign-no-coordination.json"]
DIGOXIN_CICLO = ["digoxin-cyclosporine-order-select-coordination.json", "digoxin-cyclosporine-order-select-no-coordination.json",
                 "digoxin-cyclosporine-order-sign-coordination.json", "digoxin-cyclosporine-order-sign-no-coordination.json",
                 "request-digoxin-cyclosporine-scenario-01.json", "request-digoxin-cyclosporine-scenario-03.json"]


@pytest.mark.corpus
@pytest.mark.parametrize("name", DIGOXIN_CICLO)
def test_pddi_digoxin_cyclosporine_raises_no_ansm_interaction(name: str) -> None:
    path = PDDI / name
    if not path.is_file():
        pytest.skip("../shared PDDI-CDS requests not available")
    report = check(str(path), as_of="2026-01-15", select=["IX"])
    assert report.inputs.resources > 0
    substances = {o.ref: o.identity.substance_keys for r in _records(path) for o in r.medication_orders}
    pairs = [set().union(*(substances.get(ref, frozenset()) for ref in f.implicated)) for f in report.findings]
    # Other drugs of the scenario (e.g. furosemide) may interact for real; digoxin + ciclosporin must not.
    assert not [p for p in pairs if {"digoxine", "ciclosporine"} <= p]


def _records(path: Path) -> list:  # type: ignore[type-arg]
    from checker.api import identify_records
    from checker.fhir_input import read
    from checker.referentials import default_referentials

    ing = read(str(path))
    identify_records(ing.records, default_referentials())
    return ing.records


@pytest.mark.corpus
@pytest.mark.parametrize("name", WARFARIN_NSAID)
def test_pddi_warfarin_nsaid_raises_the_thesaurus_level(name: str) -> None:
    path = PDDI / name
    if not path.is_file():
        pytest.skip("../shared PDDI-CDS requests not available")
    from checker import fhir_input
    from checker.api import identify_records
    from checker.model import RULE_CONFIDENCE
    from checker.referentials import default_referentials

    ing = fhir_input.read(str(path))
    identify_records(ing.records, default_referentials())
    nsaid = [o for r in ing.records for o in r.medication_orders if "ketorolac" in o.label.lower()]
    assert nsaid, "the request carries a ketorolac draft order"
    ident = nsaid[0].identity
    if ident is None or ident.confidence < RULE_CONFIDENCE or not any(a.startswith("M01A") for a in ident.atc_codes):
        pytest.xfail(f"drug referential identifies {nsaid[0].label!r} as {ident and [s.key for s in ident.substances]} "
                     f"(confidence {ident and ident.confidence}, ATC {ident and sorted(ident.atc_codes)}): "
                     "ketorolac is not an ANSM class member and needs an oral NSAID ATC code (M01AB15)")
    # the upstream warfarin request is valid from 2026-07-25 (30 days × 4): check on a day inside it
    report = check(str(path), as_of="2026-08-01", select=["IX"])
    found = [f for f in report.findings if f.rule == "IX001"]
    assert [(f.level, f.severity.value) for f in found] == [("AD", "warning")]


@pytest.mark.corpus
@pytest.mark.parametrize("number", ["02", "03", "04", "05"])
def test_pddi_cql_scenarios_raise_warfarin_nsaid_as_ad(number: str) -> None:
    """Scenarios 02–05 carry warfarin as a request, a dispense or an administration, in a prefetch
    written inside ``context``: the oral ibuprofen draft must meet it at the thesaurus level (AD)."""
    path = PDDI / f"request-warfarin-nsaid-scenario-{number}.json"
    if not path.is_file():
        pytest.skip("../shared PDDI-CDS requests not available")
    report = check(str(path), as_of="2026-01-15", select=["IX"])
    ad = [f for f in report.findings if f.level == "AD" and "warfarine" in f.summary and "ibuprof" in f.summary]
    assert ad and all(f.severity.value == "warning" for f in ad)
    assert all(f.implicated for f in ad)


# --- dispenses, administrations and statements: taken or not, and over which days ---------------

_SIMVASTATIN = {"resourceType": "MedicationRequest", "id": "l0", "status": "active", "intent": "order",
                "medicationCodeableConcept": {"text": "Simvastatine 20 mg comprimé"},
                "subject": {"reference": "Patient/p"}, "authoredOn": "2026-01-05",
                "dispenseRequest": {"expectedSupplyDuration": {"value": 30, "unit": "d"}}}
_CLARITHRO = {"text": "Clarithromycine 500 mg comprimé"}
_ADHERENCE = "http://hl7.org/fhir/CodeSystem/medication-statement-adherence"


def _use(rt: str, status: str, **fields: object) -> dict:
    r5 = fields.pop("r5", False)
    medication = {"medication": {"concept": _CLARITHRO}} if r5 else {"medicationCodeableConcept": _CLARITHRO}
    return {"resourceType": rt, "id": "u", "status": status, **medication, "subject": {"reference": "Patient/p"},
            **fields}


def _adherence(code: str) -> dict:
    return {"code": {"coding": [{"system": _ADHERENCE, "code": code}]}}


USES = {
    # records saying the drug was not taken (R4/R5 status, STU3 flags, R5 adherence)
    "statement-not-taken": (_use("MedicationStatement", "not-taken", effectivePeriod={"start": "2026-01-01"}), False),
    "administration-not-done": (_use("MedicationAdministration", "not-done", effectiveDateTime="2026-01-10"), False),
    "dispense-declined": (_use("MedicationDispense", "declined", whenHandedOver="2026-01-10"), False),
    "dispense-cancelled": (_use("MedicationDispense", "cancelled", whenHandedOver="2026-01-10"), False),
    "statement-stu3-taken-n": (_use("MedicationStatement", "active", taken="n", effectiveDateTime="2026-01-10"), False),
    "administration-stu3-not-given": (_use("MedicationAdministration", "completed", notGiven=True,
                                           effectiveDateTime="2026-01-10"), False),
    "dispense-stu3-not-done": (_use("MedicationDispense", "completed", notDone=True, whenHandedOver="2026-01-10"), False),
    "statement-r5-not-taking": (_use("MedicationStatement", "recorded", r5=True, adherence=_adherence("not-taking"),
                                     effectivePeriod={"start": "2026-01-01"}), False),
    "statement-r5-stopped": (_use("MedicationStatement", "recorded", r5=True, adherence=_adherence("stopped"),
                                  effectivePeriod={"start": "2026-01-01"}), False),
    # an administration stopped before its end was still (partly) given that day; a request that ended was taken
    "administration-stopped": (_use("MedicationAdministration", "stopped", effectiveDateTime="2026-01-10"), True),
    "request-r5-ended": ({**_SIMVASTATIN, "id": "u", "status": "ended", "medicationCodeableConcept": _CLARITHRO},
                         True),
    # one administration at a point in time covers that day only
    "administration-once-long-ago": (_use("MedicationAdministration", "completed", effectiveDateTime="2025-03-10"),
                                     False),
    "administration-once-during": (_use("MedicationAdministration", "completed", effectiveDateTime="2026-01-10"), True),
    "administration-month-only": (_use("MedicationAdministration", "completed", effectiveDateTime="2025-12"), False),
    "administration-period": (_use("MedicationAdministration", "completed",
                                   effectivePeriod={"start": "2025-12-20", "end": "2026-01-06"}), True),
    # a statement at a point in time: that day when it says the drug is no longer taken (completed), else
    # from that day on: an R5 "recorded" or R4 "unknown" medication-list entry may still be taken
    "statement-completed-once": (_use("MedicationStatement", "completed", effectiveDateTime="2025-03-10"), False),
    "statement-r5-recorded-once": (_use("MedicationStatement", "recorded", r5=True, effectiveDateTime="2025-03-10"),
                                   True),
    "statement-r4-unknown-once": (_use("MedicationStatement", "unknown", effectiveDateTime="2025-03-10"), True),
    "statement-active-since": (_use("MedicationStatement", "active", effectiveDateTime="2025-03-10"), True),
    "statement-r5-taking-since": (_use("MedicationStatement", "recorded", r5=True, adherence=_adherence("taking"),
                                       effectiveDateTime="2025-03-10"), True),
    "statement-on-hold": (_use("MedicationStatement", "on-hold", effectivePeriod={"start": "2026-01-01"}), True),
    "dispense-supply": (_use("MedicationDispense", "completed", whenHandedOver="2026-01-01",
                             daysSupply={"value": 7, "unit": "d"}), True),
    "dispense-supply-over": (_use("MedicationDispense", "completed", whenHandedOver="2025-12-01",
                                  daysSupply={"value": 7, "unit": "d"}), False),
}


@pytest.mark.parametrize("name", sorted(USES))
def test_medication_use_counts_only_when_and_while_taken(name: str) -> None:
    """Simvastatin from 5 Jan 2026 + a clarithromycin record: a contraindication only when the
    record says clarithromycin was (or is) taken on a day of the simvastatin course."""
    use, flagged = USES[name]
    patient = {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1960-01-01"}
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": r} for r in (patient, _SIMVASTATIN, use)]}
    report = check(bundle, as_of="2026-01-15", select=["IX"])
    assert not report.errors, report.errors
    assert report.inputs.balanced() and report.inputs.checked == 3  # still read and counted
    assert [f.rule for f in report.findings] == (["IX001"] if flagged else [])


@pytest.mark.corpus
def test_pddi_topical_diclofenac_with_warfarin_is_a_local_route() -> None:
    """Scenario 01 orders "Diclofenac Sodium 0.01 MG/MG Topical Gel [Voltaren]" with no route: a skin
    form, outside the thesaurus' systemic interactions (ANSM thesaurus 2023, p. 2)."""
    path = PDDI / "request-warfarin-nsaid-scenario-01.json"
    if not path.is_file():
        pytest.skip("../shared PDDI-CDS requests not available")
    report = check(str(path), as_of="2026-01-15", select=["IX"])
    assert report.inputs.resources > 0
    assert not [f for f in report.findings if "diclof" in f.summary]
