"""Protocol language, engine and rules OP001/OP002 (issue 5)."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from checker.model import (
    Coding,
    Concept,
    Condition,
    Dosage,
    MedicationIdentity,
    MedicationOrder,
    Observation,
    Patient,
    PatientRecord,
    ServiceOrder,
    SubstanceMatch,
)
from checker.protocols import ProtocolError, ProtocolSet, evaluate_record, load_protocols, parse_file, validate_files
from checker.protocols.engine import applicable, code_matches, concept_matches, system_is
from checker.protocols.language import CodeSpec, schema_path
from checker.referentials import Referentials, load_manifest, referentials_dir, sha256_file
from tests.conftest import REPO, SAMPLES

PROTOCOL_DIR = REPO / "referentials" / "protocols"
PROTOCOL_FILES = sorted(PROTOCOL_DIR.glob("*.xml"))
AS_OF = date(2026, 1, 15)
NS = 'xmlns="urn:pertinence:protocol:1"'


@pytest.fixture(scope="module")
def shipped() -> ProtocolSet:
    return Referentials().get("protocols")


# --- the shipped protocols -----------------------------------------------------------------------


def test_every_shipped_protocol_file_validates() -> None:
    assert PROTOCOL_FILES, "no protocol files shipped"
    assert validate_files(PROTOCOL_FILES) == []


def test_manifest_lists_every_protocol_file_with_its_checksum() -> None:
    entry = load_manifest()["protocols"]
    listed = {p: s for p, s in entry.files}
    root = referentials_dir()
    expected = {f.relative_to(root).as_posix() for f in PROTOCOL_FILES} | {"schema/protocol.xsd"}
    assert set(listed) == expected
    for rel, digest in listed.items():
        assert sha256_file(root / rel) == digest, f"stale checksum for {rel}: run python tools/refresh_manifest.py"


def test_protocol_counts_meet_the_issue(shipped: ProtocolSet) -> None:
    assert len(shipped.services()) >= 10
    assert len(shipped.medications()) >= 6
    assert len({p.id for p in shipped.protocols}) == len(shipped.protocols)


def test_every_protocol_cites_a_source_with_url_and_year(shipped: ProtocolSet) -> None:
    for p in shipped.protocols:
        assert p.sources, p.id
        for s in p.sources:
            assert s.url.startswith("http"), (p.id, s.url)
            assert re.fullmatch(r"\d{4}", s.year), (p.id, s.year)
            assert s.publisher and s.title
        assert "fr" in p.titles and "en" in p.titles


def test_off_protocol_outcomes_have_messages_and_alternatives_in_both_languages(shipped: ProtocolSet) -> None:
    for p in shipped.protocols:
        reported = [o for o in p.outcomes.values() if o.verdict in ("off-protocol", "undetermined")]
        assert reported, f"{p.id} can never report anything"
        for o in reported:
            assert {"fr", "en"} <= o.messages.keys(), (p.id, o.id)
            assert {"fr", "en"} <= o.alternatives.keys(), (p.id, o.id)


def _sample_records(pattern: str) -> list[tuple[Path, PatientRecord]]:
    from checker.fhir_input import read

    out = []
    for path in sorted((SAMPLES / "rules").glob(f"OP00*/{pattern}.json")):
        for record in read([str(path)]).records:
            out.append((path, record))
    return out


def test_every_protocol_has_a_failing_sample_naming_it(shipped: ProtocolSet) -> None:
    named: set[str] = set()
    for exp in (SAMPLES / "rules").glob("OP00*/fail-*.expect"):
        for f in json.loads(exp.read_text(encoding="utf-8")).get("findings", []):
            named.add(f["evidence"]["protocol"])
    assert {p.id for p in shipped.protocols} <= named


def test_every_protocol_is_exercised_by_a_passing_sample(shipped: ProtocolSet) -> None:
    """A pass sample counts only if the protocol really applies to one of its orders."""
    exercised: set[str] = set()
    for _, record in _sample_records("pass-*"):
        for p in shipped.protocols:
            if list(applicable(p, record)):
                exercised.add(p.id)
    assert {p.id for p in shipped.protocols} <= exercised


def test_missing_datum_samples_say_which_datum() -> None:
    seen = 0
    for exp in (SAMPLES / "rules").glob("OP00*/fail-*.expect"):
        for f in json.loads(exp.read_text(encoding="utf-8")).get("findings", []):
            if f["evidence"].get("missing"):
                seen += 1
    assert seen >= 8


# --- language: invalid files fail with file:line ---------------------------------------------------


def _minimal(decision: str = "", criteria: str = "", applies: str = "") -> str:
    applies = applies or '<act id="a"><label lang="fr">radio</label><pattern>\\bradio\\b</pattern></act>'
    criteria = criteria or '<criterion id="c"><label lang="fr">c</label><reasonGiven/></criterion>'
    decision = decision or (
        '<decision start="n1"><check id="n1" criterion="c" yes="o1" no="o2" unknown="o2"/>'
        '<outcome id="o1" verdict="conform"/>'
        '<outcome id="o2" verdict="off-protocol" severity="warning"><message lang="fr">m</message>'
        '<alternative lang="fr">a</alternative></outcome></decision>'
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<protocol {NS} id="T-1" kind="imaging" version="1">\n'
        '<title lang="fr">t</title>\n'
        '<source publisher="HAS" year="2020" url="https://example.org/x">doc</source>\n'
        f"<appliesTo>\n{applies}\n</appliesTo>\n<criteria>\n{criteria}\n</criteria>\n{decision}\n</protocol>\n"
    )


def _write(tmp_path: Path, text: str, name: str = "p.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_protocol_is_valid(tmp_path: Path) -> None:
    proto = parse_file(_write(tmp_path, _minimal()))
    assert proto.id == "T-1" and set(proto.graph.nodes) == {"n1", "o1", "o2"}


def test_malformed_xml_reports_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, _minimal().replace("</criteria>", "</criterion>", 1))
    problems = validate_files([path])
    assert problems and problems[0].startswith(f"{path}:")
    assert re.match(rf"{re.escape(str(path))}:\d+: not well-formed", problems[0])


def test_schema_violation_reports_the_offending_line(tmp_path: Path) -> None:
    text = _minimal().replace('<title lang="fr">t</title>', '<title lang="fr">t</title>\n<bogus/>')
    path = _write(tmp_path, text)
    problems = validate_files([path])
    line = text.splitlines().index("<bogus/>") + 1
    assert problems[0].startswith(f"{path}:{line}:"), problems


def test_unknown_criterion_and_target_are_reported_with_lines(tmp_path: Path) -> None:
    decision = (
        '<decision start="n1">\n<check id="n1" criterion="nope" yes="o1" no="ghost" unknown="o1"/>\n'
        '<outcome id="o1" verdict="conform"/>\n</decision>'
    )
    with pytest.raises(ProtocolError) as err:
        parse_file(_write(tmp_path, _minimal(decision=decision)))
    text = "\n".join(err.value.problems)
    assert "unknown criterion 'nope'" in text
    assert "'ghost' is not a check or outcome" in text
    assert all(re.match(r".+\.xml:\d+: ", p) for p in err.value.problems)


def test_loop_and_unreachable_nodes_are_rejected(tmp_path: Path) -> None:
    loop = (
        '<decision start="n1"><check id="n1" criterion="c" yes="n2" no="o1" unknown="o1"/>'
        '<check id="n2" criterion="c" yes="n1" no="o1" unknown="o1"/><outcome id="o1" verdict="conform"/>'
        '<outcome id="o9" verdict="conform"/></decision>'
    )
    with pytest.raises(ProtocolError, match="loop"):
        parse_file(_write(tmp_path, _minimal(decision=loop)))
    unreachable = (
        '<decision start="n1"><check id="n1" criterion="c" yes="o1" no="o1" unknown="o1"/>'
        '<outcome id="o1" verdict="conform"/><outcome id="o9" verdict="conform"/></decision>'
    )
    with pytest.raises(ProtocolError, match="'o9' cannot be reached"):
        parse_file(_write(tmp_path, _minimal(decision=unreachable)))


def test_bad_regex_and_missing_alternative_are_rejected(tmp_path: Path) -> None:
    applies = '<act id="a"><label lang="fr">x</label><pattern>radio(</pattern></act>'
    with pytest.raises(ProtocolError, match="invalid pattern"):
        parse_file(_write(tmp_path, _minimal(applies=applies)))
    decision = (
        '<decision start="n1"><check id="n1" criterion="c" yes="o1" no="o2" unknown="o2"/>'
        '<outcome id="o1" verdict="conform"/><outcome id="o2" verdict="off-protocol" severity="info">'
        '<message lang="fr">m</message></outcome></decision>'
    )
    with pytest.raises(ProtocolError, match="needs a French <alternative>"):
        parse_file(_write(tmp_path, _minimal(decision=decision), "q.xml"))


def test_duplicate_protocol_ids_are_rejected(tmp_path: Path) -> None:
    a = _write(tmp_path, _minimal(), "a.xml")
    b = _write(tmp_path, _minimal(), "b.xml")
    assert any("already used" in p for p in validate_files([a, b]))
    with pytest.raises(ProtocolError):
        load_protocols([a, b], schema=schema_path())


# --- engine -------------------------------------------------------------------------------------

ICD = "http://hl7.org/fhir/sid/icd-10"


def test_code_system_aliases() -> None:
    assert system_is("ICD10", "http://hl7.org/fhir/sid/icd-10-cm")
    assert system_is("ICD10", "urn:oid:2.16.840.1.113883.6.3")
    assert system_is("CPT", "http://www.ama-assn.org/go/cpt")
    assert system_is("LOINC", "urn:oid:2.16.840.1.113883.6.1")
    assert not system_is("LOINC", "urn:oid:2.16.840.1.113883.6.12")
    assert system_is("ATC", "http://www.whocc.no/atc")
    assert not system_is("ATC", "http://example.org/catalog")
    assert code_matches(CodeSpec("ICD10", "M54.5", prefix=True), ICD, "M5450")
    assert not code_matches(CodeSpec("ICD10", "M54.5", prefix=False), ICD, "M54.50")


def test_patterns_ignore_case_and_accents(shipped: ProtocolSet) -> None:
    lbp = shipped.get("HAS-LOMBALGIE-IMAGERIE")
    mri = next(a for a in lbp.acts if a.id == "lumbar-mri")
    xray = next(a for a in lbp.acts if a.id == "lumbar-xray")
    assert concept_matches(mri.matcher, Concept(text="IRM LOMBAIRE"))
    assert concept_matches(mri.matcher, Concept(text="Lumbar spine MRI"))
    assert concept_matches(xray.matcher, Concept(text="Radio du rachis lombaire"))
    assert not concept_matches(xray.matcher, Concept(text="IRM lombaire"))


def _lbp_record(onset: date | None, birth: date | None = date(1980, 1, 1), text: str = "Radiographie du rachis lombaire",
                extra: list[Condition] | None = None) -> PatientRecord:
    cond = Condition("Condition/c1", Concept((Coding(ICD, "M54.5"),), "Lombalgie"), "active", onset=onset)
    order = ServiceOrder("ServiceRequest/s1", "active", "order", Concept(text=text), authored_on=date(2026, 1, 10),
                         reason_refs=("Condition/c1",))
    return PatientRecord(Patient("Patient/p", birth, "male"), service_orders=[order], conditions=[cond, *(extra or [])])


@pytest.mark.parametrize(
    "onset, branch",
    [
        (date(2025, 10, 13), "too-early"),  # 89 days before the order: under three months
        (date(2025, 10, 12), "prefer-mri"),  # 90 days: no longer "less than 90 days"
        (None, "no-onset"),
    ],
)
def test_low_back_pain_onset_boundary(shipped: ProtocolSet, onset: date | None, branch: str) -> None:
    [ev] = evaluate_record(shipped.get("HAS-LOMBALGIE-IMAGERIE"), _lbp_record(onset), AS_OF)
    assert ev.outcome.id == branch


def test_low_back_pain_red_flag_and_age_threshold(shipped: ProtocolSet) -> None:
    proto = shipped.get("HAS-LOMBALGIE-IMAGERIE")
    fever = Condition("Condition/f", Concept(text="Fièvre à 39 °C"), "active")
    [ev] = evaluate_record(proto, _lbp_record(date(2026, 1, 1), extra=[fever]), AS_OF)
    assert ev.verdict == "conform" and ev.outcome.id == "justified"
    # onset after 55 is a red flag: 56 years old on the order day
    [ev] = evaluate_record(proto, _lbp_record(date(2026, 1, 1), birth=date(1969, 12, 1)), AS_OF)
    assert ev.verdict == "conform"
    [ev] = evaluate_record(proto, _lbp_record(date(2026, 1, 1), birth=date(1970, 2, 1)), AS_OF)
    assert ev.outcome.id == "too-early"


def test_missing_birth_date_and_onset_are_both_named(shipped: ProtocolSet) -> None:
    [ev] = evaluate_record(shipped.get("HAS-LOMBALGIE-IMAGERIE"), _lbp_record(None, birth=None), AS_OF)
    assert ev.verdict == "undetermined"
    # missing data are codes the catalogue words in either language (the protocol's own labels in both)
    assert [m.detail("fr") for m in ev.missing] == ["date de naissance du patient", "date de début : lombalgie commune"]
    assert [m.detail("en") for m in ev.missing] == ["patient's birth date", "onset date: common low back pain"]


def _lbp_with(reason_text: str = "", conditions: list[Condition] | None = None,
              observations: list[Observation] | None = None, refs: tuple[str, ...] = ("Condition/c1",)) -> PatientRecord:
    record = _lbp_record(date(2026, 1, 1), extra=conditions)
    order = record.service_orders[0]
    reasons = (Concept(text=reason_text),) if reason_text else ()
    record.service_orders = [ServiceOrder(order.ref, order.status, order.intent, order.code, authored_on=order.authored_on,
                                          reasons=reasons, reason_refs=refs)]
    record.observations = list(observations or [])
    return record


@pytest.mark.parametrize(
    "text, pattern, expected",
    [
        ("pas de fièvre", r"\bfievre\b", False),
        ("Lombalgie sans signe d'alerte : pas de fièvre, pas d'antécédent de cancer", r"\bcancer", False),
        ("sans fièvre", r"\bfievre\b", False),
        ("Absence de fièvre", r"\bfievre\b", False),
        ("aucun antécédent de cancer", r"\bcancer", False),
        ("sans fièvre ni cancer", r"\bcancer", False),
        ("No fever", r"\bfever\b", False),
        ("Low back pain without fever", r"\bfever\b", False),
        ("Patient denies fever.", r"\bfever\b", False),
        ("Recherche de cancer négative", r"\bcancer", False),
        ("Fièvre à 39,4 °C", r"\bfievre\b", True),
        ("Pas de traumatisme, fièvre depuis hier", r"\bfievre\b", True),
        ("pas de traumatisme mais fièvre", r"\bfievre\b", True),
        ("pas de fièvre ; antécédent de cancer du sein", r"\bcancer", True),
        ("Antécédent de cancer sans récidive", r"\bcancer", True),
        ("Cancer du sein triple négatif", r"\bcancer", True),
        ("No trauma, fever since Monday", r"\bfever\b", True),
        ("no trauma but fever", r"\bfever\b", True),
        ("Lombalgie sans irradiation", r"\blombalgi", True),
        # a cue does not reach over « et » / "and", nor past five words (found in review)
        ("Lombalgie sans amélioration et fièvre à 39 depuis deux jours", r"\bfievre\b", True),
        ("Pas d'amélioration depuis 4 semaines chez un patient aux antécédents de cancer", r"\bcancer", True),
        ("No improvement after 6 weeks and fever", r"\bfever\b", True),
        ("sans appétit et perte de poids", r"\bperte de poids\b", True),
        ("pas d'amélioration après quatre longues semaines de repos fièvre", r"\bfievre\b", True),
        ("pas de fièvre ni de perte de poids", r"\bperte de poids\b", False),
    ],
)
def test_negated_free_text_does_not_match(text: str, pattern: str, expected: bool) -> None:
    from checker.protocols.negation import affirmed

    assert affirmed(re.compile(pattern), text) is expected


@pytest.mark.parametrize(
    "reason, branch",
    [
        ("Lombalgie commune sans signe d'alerte : pas de fièvre, pas d'antécédent de cancer", "too-early"),
        ("Lumbar pain, no fever, no history of cancer", "too-early"),
        ("Lombalgie ; fièvre à 39 °C", "justified"),
        ("Lombalgie, pas de fièvre mais antécédent de cancer du sein", "justified"),
    ],
)
def test_red_flags_denied_in_the_reason_do_not_count(shipped: ProtocolSet, reason: str, branch: str) -> None:
    [ev] = evaluate_record(shipped.get("HAS-LOMBALGIE-IMAGERIE"), _lbp_with(reason), AS_OF)
    assert ev.outcome.id == branch


@pytest.mark.parametrize("verification, branch", [("refuted", "too-early"), ("entered-in-error", "too-early"),
                                                   ("confirmed", "justified"), ("", "justified")])
def test_refuted_or_mistaken_conditions_are_no_red_flag(shipped: ProtocolSet, verification: str, branch: str) -> None:
    proto = shipped.get("HAS-LOMBALGIE-IMAGERIE")
    cancer = Condition("Condition/k", Concept((Coding(ICD, "C50.9"),), "Cancer du sein"), "resolved",
                       verification_status=verification)
    [ev] = evaluate_record(proto, _lbp_with(conditions=[cancer]), AS_OF)  # in the problem list (status="any")
    assert ev.outcome.id == branch
    [ev] = evaluate_record(proto, _lbp_with(conditions=[cancer], refs=("Condition/c1", "Condition/k")), AS_OF)
    assert ev.outcome.id == branch  # and as a reason of the order


def test_refuted_conditions_are_ignored_by_every_protocol_using_conditions(shipped: ProtocolSet) -> None:
    """status="any" criteria elsewhere (here: breast-cancer high risk for screening mammography)."""
    proto = shipped.get("HAS-MAMMOGRAPHIE-DEPISTAGE")
    order = ServiceOrder("ServiceRequest/m", "active", "order", Concept(text="Mammographie"), authored_on=date(2026, 1, 10),
                         reasons=(Concept(text="Dépistage"),))
    for verification, branch in (("refuted", "not-indicated"), ("entered-in-error", "not-indicated"), ("confirmed", "conform")):
        cancer = Condition("Condition/k", Concept((Coding(ICD, "C50.9"),), "Cancer du sein"), "remission",
                           verification_status=verification)
        record = PatientRecord(Patient("Patient/p", date(1983, 6, 6), "female"), service_orders=[order], conditions=[cancer])
        [ev] = evaluate_record(proto, record, AS_OF)
        assert ev.outcome.id == branch, verification


@pytest.mark.parametrize(
    "value, unit, branch",
    [
        (39.4, "Cel", "justified"),
        (38.0, "Cel", "justified"),  # 38 °C or more (Brighton Collaboration definition)
        (37.9, "Cel", "too-early"),
        (101.0, "[degF]", "justified"),  # 38.3 °C
        (98.6, "°F", "too-early"),  # 37 °C
        (39.4, "", "early-unsure"),  # no unit: the value cannot be read
    ],
)
def test_measured_temperature_is_a_red_flag_from_38(shipped: ProtocolSet, value: float, unit: str, branch: str) -> None:
    temp = Observation("Observation/t", Concept((Coding("http://loinc.org", "8310-5"),), "Température"), value=value,
                       unit=unit, effective=date(2026, 1, 10))
    [ev] = evaluate_record(shipped.get("HAS-LOMBALGIE-IMAGERIE"), _lbp_with(observations=[temp]), AS_OF)
    assert ev.outcome.id == branch
    if branch == "early-unsure":
        assert [m.detail("fr") for m in ev.missing] == ["drapeau rouge (signe d'alerte)"]


def test_observation_units_are_compared_or_converted() -> None:
    from checker.protocols.engine import in_unit

    assert in_unit(39.0, "Cel", "Cel") == 39.0
    assert in_unit(39.0, "°C", "Cel") == 39.0
    assert in_unit(212.0, "[degF]", "Cel") == pytest.approx(100.0)
    assert in_unit(100.0, "Cel", "[degF]") == pytest.approx(212.0)
    assert in_unit(39.0, "", "Cel") is None
    assert in_unit(39.0, "mmol/L", "Cel") is None


def _hypnotic(ref: str, start: date, days: float, status: str = "active", identified: bool = True) -> MedicationOrder:
    identity = MedicationIdentity((SubstanceMatch("zolpidem", "zolpidem", atc=("N05CF02",)),), "test", 0.99)
    return MedicationOrder(ref, status, "order", Concept(text="Stilnox 10 mg"), authored_on=start,
                           dosages=(Dosage(bounds_days=days),), identity=identity if identified else None)


@pytest.mark.parametrize(
    "second_start, second_days, expected",
    [
        (date(2025, 12, 29), 16, "too-long"),  # starts the day after the first ends: 30 days of treatment
        (date(2025, 12, 30), 16, "too-long"),  # a renewal one day late still continues the treatment
        (date(2026, 1, 26), 16, "too-long"),  # 28 days without the drug: still chained (convention)
        (date(2026, 1, 27), 16, "conform"),  # 29 days without: a new treatment
        (date(2026, 1, 8), 14, "conform"),  # chained, but 14 + 14 = 28 days of treatment: the gap is not counted
        (date(2026, 1, 8), 15, "too-long"),  # 14 + 15 = 29 days of treatment
    ],
)
def test_hypnotic_duration_uses_consecutive_prescriptions(shipped: ProtocolSet, second_start: date, second_days: int,
                                                          expected: str) -> None:
    first = _hypnotic("MedicationRequest/a", date(2025, 12, 15), 14, status="completed")  # 15 → 28 Dec
    second = _hypnotic("MedicationRequest/b", second_start, second_days)
    record = PatientRecord(Patient("Patient/p", date(1980, 1, 1), "female"), medication_orders=[first, second])
    evs = evaluate_record(shipped.get("HAS-BZD-HYPNOTIQUE-4-SEMAINES"), record, AS_OF)
    by_ref = {e.order.ref: e.outcome.id for e in evs}
    # the completed line is judged too, on its own 14 days: the later renewal does not make it too long
    assert by_ref == {"MedicationRequest/a": "conform", "MedicationRequest/b": expected}


def test_medication_matching_uses_the_identified_atc_codes(shipped: ProtocolSet) -> None:
    unidentified = _hypnotic("MedicationRequest/x", date(2025, 10, 1), 120, identified=False)
    record = PatientRecord(Patient("Patient/p", date(1980, 1, 1), "female"), medication_orders=[unidentified])
    assert evaluate_record(shipped.get("HAS-BZD-HYPNOTIQUE-4-SEMAINES"), record, AS_OF) == []
    record.medication_orders = [_hypnotic("MedicationRequest/x", date(2025, 10, 1), 120)]
    [ev] = evaluate_record(shipped.get("HAS-BZD-HYPNOTIQUE-4-SEMAINES"), record, AS_OF)
    assert ev.outcome.id == "too-long"
    assert ev.facts[0].detail("fr").endswith(" : 120 j")


def test_observation_value_and_absence(shipped: ProtocolSet) -> None:
    proto = shipped.get("SFR-RADIO-CHEVILLE-OTTAWA")
    order = ServiceOrder("ServiceRequest/o", "active", "order", Concept(text="Radiographie de la cheville"),
                         authored_on=date(2026, 1, 12), reasons=(Concept(text="Entorse de cheville"),))
    record = PatientRecord(Patient("Patient/p", date(1990, 1, 1), "male"), service_orders=[order])
    assert evaluate_record(proto, record, AS_OF)[0].outcome.id == "no-ottawa"
    record.observations = [Observation("Observation/1", Concept(text="Ottawa"), value_bool=False)]
    assert evaluate_record(proto, record, AS_OF)[0].outcome.id == "not-indicated"
    record.observations = [Observation("Observation/1", Concept(text="Ottawa"), value_bool=True)]
    assert evaluate_record(proto, record, AS_OF)[0].outcome.id == "conform"


def test_repeat_imaging_graph_with_same_act(tmp_path: Path) -> None:
    """The language can express "same exam again within N days" (otherOrder sameAct)."""
    criteria = ('<criterion id="again"><label lang="fr">même examen récent</label>'
                '<otherOrder withinDays="30" sameAct="true"/></criterion>')
    decision = ('<decision start="n1"><check id="n1" criterion="again" yes="o2" no="o1" unknown="o1"/>'
                '<outcome id="o1" verdict="conform"/><outcome id="o2" verdict="off-protocol" severity="info">'
                '<message lang="fr">m</message><alternative lang="fr">a</alternative></outcome></decision>')
    proto = parse_file(_write(tmp_path, _minimal(decision=decision, criteria=criteria)))
    mk = lambda ref, day: ServiceOrder(ref, "active", "order", Concept(text="Radio du genou"), authored_on=day)  # noqa: E731
    record = PatientRecord(Patient("Patient/p"), service_orders=[mk("SR/1", date(2025, 12, 1)), mk("SR/2", date(2025, 12, 20)),
                                                                 mk("SR/3", date(2026, 3, 1))])
    outcomes = {e.order.ref: e.outcome.id for e in evaluate_record(proto, record, AS_OF)}
    assert outcomes == {"SR/1": "o1", "SR/2": "o2", "SR/3": "o1"}


# --- rules through the public API ---------------------------------------------------------------


def test_rule_finding_fields_and_english_messages() -> None:
    from checker.api import check_records

    report = check_records([_lbp_record(date(2026, 1, 1))], as_of=AS_OF, select=["OP001"], lang="en")
    [f] = report.findings
    assert f.category == "off-protocol" and f.severity.value == "warning"
    assert f.evidence["protocol"] == "HAS-LOMBALGIE-IMAGERIE" and f.evidence["branch"] == "too-early"
    assert [s["answer"] for s in f.evidence["path"]] == ["yes", "no", "yes"]
    assert any("onset 1 Jan 2026" in fact for fact in f.to_dict()["evidence"]["facts"])
    assert f.suggestion and "MRI" in f.suggested()["alternative"]
    assert "off protocol" in f.summary and len(f.summary) <= 140
    assert f.source.url.startswith("http") and f.source.edition == "2019"


def test_rules_survive_a_record_without_patient_or_dates() -> None:
    from checker.api import check_records

    order = ServiceOrder("ServiceRequest/x", "draft", "plan", Concept(text="IRM lombaire"),
                         reasons=(Concept(text="lombalgie"),), draft=True)
    med = MedicationOrder("MedicationRequest/y", "draft", "plan", Concept(text="x"), draft=True,
                          identity=MedicationIdentity((SubstanceMatch("omeprazole", "oméprazole", atc=("A02BC01",)),),
                                                      "test", 0.99))
    report = check_records([PatientRecord(None, service_orders=[order], medication_orders=[med])], as_of=AS_OF,
                           select=["OP"])
    assert all(f.rule in ("OP001", "OP002") for f in report.findings)


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_validate_and_list(tmp_path: Path) -> None:
    import cli

    runner = CliRunner()
    ok = runner.invoke(cli.main, ["protocols", "validate", *map(str, PROTOCOL_FILES)])
    assert ok.exit_code == 0, ok.output
    bad = _write(tmp_path, _minimal().replace('kind="imaging"', 'kind="surgery"'))
    res = runner.invoke(cli.main, ["protocols", "validate", str(bad)])
    assert res.exit_code == 1
    assert f"{bad}:2:" in res.output
    listing = runner.invoke(cli.main, ["protocols", "list"])
    assert listing.exit_code == 0
    assert "HAS-LOMBALGIE-IMAGERIE" in listing.output and "OP002" in listing.output


@pytest.mark.parametrize("status", ["not-done", "declined", "not-taken"])
def test_a_record_of_a_drug_not_taken_is_no_treatment_history(shipped: ProtocolSet, status: str) -> None:
    """A record saying the drug was not given, dispensed or taken does not lengthen a treatment."""
    first = _hypnotic("MedicationDispense/a", date(2025, 12, 15), 14, status=status)  # would be 15 → 28 Dec
    second = _hypnotic("MedicationRequest/b", date(2025, 12, 29), 16)
    record = PatientRecord(Patient("Patient/p", date(1980, 1, 1), "female"), medication_orders=[first, second])
    [ev] = evaluate_record(shipped.get("HAS-BZD-HYPNOTIQUE-4-SEMAINES"), record, AS_OF)
    assert ev.order.ref == "MedicationRequest/b" and ev.outcome.id == "conform"
