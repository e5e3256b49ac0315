"""Protocol authoring (issue 20): `protocols new` templates, validation messages that point to the
line and the element, transport protocols, and source hygiene of the shipped protocols."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import pytest
from click.testing import CliRunner

from checker.model import Concept, Patient, PatientRecord, ServiceOrder
from checker.protocols import ProtocolSet, evaluate_record, parse_file, validate_files
from checker.protocols.authoring import new_protocol
from checker.referentials import Referentials
from tests.conftest import REPO, SAMPLES

PROTOCOL_DIR = REPO / "referentials" / "protocols"
AS_OF = date(2026, 1, 15)


@pytest.fixture(scope="module")
def shipped() -> ProtocolSet:
    return Referentials().get("protocols")


# --- protocols new ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["imaging", "biology", "transport", "medication"])
def test_new_protocol_writes_a_valid_commented_template_and_two_samples(tmp_path: Path, kind: str) -> None:
    written = new_protocol("SFR-EXEMPLE-1", kind=kind, protocols_dir=tmp_path / "protocols",
                           samples_dir=tmp_path / "samples")
    xml = tmp_path / "protocols" / "sfr-exemple-1.xml"
    assert xml in written and xml.is_file()
    text = xml.read_text(encoding="utf-8")
    assert text.count("<!--") >= 5, "the template explains each part in comments"
    assert validate_files([xml]) == []
    rule = "OP002" if kind == "medication" else "OP001"
    names = sorted(p.name for p in written if p.parent.name == rule)
    assert names == ["fail-sfr-exemple-1.expect", "fail-sfr-exemple-1.json", "pass-sfr-exemple-1.json"]
    expect = json.loads((tmp_path / "samples" / rule / "fail-sfr-exemple-1.expect").read_text(encoding="utf-8"))
    [finding] = expect["findings"]
    assert finding["evidence"]["protocol"] == "SFR-EXEMPLE-1"
    assert {"implicated", "severity"} <= finding.keys()


def test_new_protocol_samples_really_pass_and_fail_against_the_template(tmp_path: Path) -> None:
    """The generated samples are run through the real engine: the fail sample ends on the
    off-protocol outcome named in its .expect, the pass sample on a silent one."""
    from checker.fhir_input import read

    new_protocol("HAS-ESSAI", kind="imaging", protocols_dir=tmp_path / "p", samples_dir=tmp_path / "s")
    proto = parse_file(tmp_path / "p" / "has-essai.xml")
    expect = json.loads((tmp_path / "s" / "OP001" / "fail-has-essai.expect").read_text(encoding="utf-8"))
    [fail_record] = read([str(tmp_path / "s" / "OP001" / "fail-has-essai.json")]).records
    [ev] = evaluate_record(proto, fail_record, AS_OF)
    assert ev.outcome.id == expect["findings"][0]["evidence"]["branch"]
    assert ev.outcome.verdict == "off-protocol"
    [pass_record] = read([str(tmp_path / "s" / "OP001" / "pass-has-essai.json")]).records
    [ev] = evaluate_record(proto, pass_record, AS_OF)
    assert ev.outcome.verdict in ("conform", "not-applicable")


def test_new_protocol_refuses_a_bad_id_or_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="id"):
        new_protocol("bad id", kind="imaging", protocols_dir=tmp_path, samples_dir=tmp_path)
    new_protocol("HAS-X", kind="imaging", protocols_dir=tmp_path, samples_dir=tmp_path)
    with pytest.raises(FileExistsError):
        new_protocol("HAS-X", kind="imaging", protocols_dir=tmp_path, samples_dir=tmp_path)


def test_cli_protocols_new(tmp_path: Path) -> None:
    import cli

    res = CliRunner().invoke(cli.main, ["protocols", "new", "HAS-CLI-1", "--kind", "biology",
                                        "--dir", str(tmp_path / "p"), "--samples", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert "has-cli-1.xml" in res.output and (tmp_path / "s" / "OP001" / "pass-has-cli-1.json").is_file()
    again = CliRunner().invoke(cli.main, ["protocols", "new", "HAS-CLI-1", "--dir", str(tmp_path / "p"),
                                          "--samples", str(tmp_path / "s")])
    assert again.exit_code != 0


# --- validate points to the line and the element ------------------------------------------------


def test_schema_errors_name_the_element_without_namespace_noise(tmp_path: Path) -> None:
    new_protocol("HAS-ERR", kind="imaging", protocols_dir=tmp_path, samples_dir=tmp_path / "s")
    path = tmp_path / "has-err.xml"
    lines = path.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if "<check " in line)
    lines[at] = lines[at].replace("<check ", '<check color="red" ', 1)
    path.write_text("\n".join(lines), encoding="utf-8")
    [problem] = validate_files([path])
    assert problem.startswith(f"{path}:{at + 1}: <check>"), problem
    assert "{urn:" not in problem and "color" in problem


def test_graph_errors_name_the_element_and_its_id(tmp_path: Path) -> None:
    new_protocol("HAS-ERR2", kind="imaging", protocols_dir=tmp_path, samples_dir=tmp_path / "s")
    path = tmp_path / "has-err2.xml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'(<check id="([\w-]+)" criterion=")[\w-]+"', r'\1nope"', text, count=1)
    path.write_text(text, encoding="utf-8")
    [problem] = validate_files([path])
    line = next(i for i, row in enumerate(text.splitlines(), 1) if 'criterion="nope"' in row)
    assert re.match(rf"{re.escape(str(path))}:{line}: <check id=\"[\w-]+\">: uses unknown criterion 'nope'", problem), problem


# --- transport ----------------------------------------------------------------------------------


def _transport(text: str, reason: str | None, *, birth: date | None = date(1950, 1, 1)) -> PatientRecord:
    order = ServiceOrder(ref="ServiceRequest/t", status="active", intent="order", code=Concept(text=text),
                         authored_on=date(2026, 1, 10),
                         reasons=(Concept(text=reason),) if reason else ())
    return PatientRecord(Patient("Patient/t", birth, "female"), service_orders=[order])


TRANSPORT_CASES = [
    # (ordered mode, stated reason, protocol, outcome)
    ("Transport en ambulance", "position allongée obligatoire après chirurgie", "REF-TRANSPORT-AMBULANCE", "conform"),
    ("Transport en ambulance", "oxygénothérapie pendant le trajet", "REF-TRANSPORT-AMBULANCE", "conform"),
    ("Transport en ambulance", "marche avec déambulateur, aide au déplacement", "REF-TRANSPORT-AMBULANCE", "seated-enough"),
    ("Transport en ambulance", "consultation de suivi", "REF-TRANSPORT-AMBULANCE", "no-criterion"),
    ("Transport en ambulance", None, "REF-TRANSPORT-AMBULANCE", "no-reason"),
    ("Bon de transport VSL", "troubles cognitifs, ne peut transmettre les informations seul", "REF-TRANSPORT-ASSIS", "conform"),
    ("Taxi conventionné", "consultation de suivi", "REF-TRANSPORT-ASSIS", "no-criterion"),
    ("Transport assis professionnalisé", None, "REF-TRANSPORT-ASSIS", "no-reason"),
    # the patient moves without assistance: personal vehicle or public transport (ameli, 7 Aug 2017)
    ("Bon de transport VSL", "consultation de suivi, patient autonome", "REF-TRANSPORT-ASSIS", "autonomous"),
    ("Taxi conventionné", "rendez-vous en cardiologie ; se déplace seul", "REF-TRANSPORT-ASSIS", "autonomous"),
    ("Taxi conventionné", "follow-up visit, walks unaided", "REF-TRANSPORT-ASSIS", "autonomous"),
    ("Transport en ambulance", "retour à domicile, patient autonome", "REF-TRANSPORT-AMBULANCE", "autonomous"),
    ("Transport en ambulance", "patient autonome, oxygénothérapie pendant le trajet", "REF-TRANSPORT-AMBULANCE", "conform"),
    # autonomous but a listed condition is stated: the condition decides
    ("Bon de transport VSL", "patient autonome mais troubles cognitifs", "REF-TRANSPORT-ASSIS", "conform"),
    # art. 2, last paragraph: a treatment or condition that may cause side effects during the journey
    ("Taxi conventionné", "patient autonome, risque d'effets secondaires pendant le trajet après la chimiothérapie",
     "REF-TRANSPORT-ASSIS", "conform"),
    ("Transport en ambulance", "risque d'effets indésirables du traitement pendant le transport",
     "REF-TRANSPORT-AMBULANCE", "seated-enough"),
    # a treatment named without its side-effect risk: the datum the decision needs is named
    ("Taxi conventionné", "séance de chimiothérapie", "REF-TRANSPORT-ASSIS", "side-effects"),
    ("Bon de transport VSL", "patient autonome, pas d'effets secondaires", "REF-TRANSPORT-ASSIS", "autonomous"),
]

#: wordings that deny autonomy: never read as « the patient moves without assistance »
NOT_AUTONOMOUS = ["patient non autonome", "n'est pas autonome", "n'est plus autonome", "peu autonome",
                  "ne peut pas se déplacer seul", "ne peut plus se déplacer seule", "incapable de se déplacer seul",
                  "inapte à se déplacer seul", "ne se déplace pas seul", "not independently mobile",
                  "sans autonomie pour les déplacements", "pas totalement autonome", "semi-autonome",
                  "partiellement autonome", "ne peut se déplacer seul", "ne doit pas se déplacer seule",
                  "ne peut se déplacer sans aide", "ne peut pas se déplacer sans assistance",
                  "incapable de se déplacer sans aide", "autonome pour la toilette mais pas pour les déplacements",
                  "autonome à domicile"]


@pytest.mark.parametrize("text, reason, protocol, outcome", TRANSPORT_CASES)
def test_transport_orders_follow_the_national_referential(shipped: ProtocolSet, text: str, reason: str | None,
                                                          protocol: str, outcome: str) -> None:
    [ev] = evaluate_record(shipped.get(protocol), _transport(text, reason), AS_OF)
    assert ev.outcome.id == outcome, (ev.outcome.id, ev.steps)


@pytest.mark.parametrize("mode, protocol", [("Taxi conventionné", "REF-TRANSPORT-ASSIS"),
                                            ("Transport en ambulance", "REF-TRANSPORT-AMBULANCE")])
@pytest.mark.parametrize("seed, wording", list(enumerate(NOT_AUTONOMOUS)))
def test_denied_autonomy_is_never_read_as_autonomy(shipped: ProtocolSet, mode: str, protocol: str, seed: int,
                                                   wording: str) -> None:
    import random

    filler = random.Random(seed).choice(FILLERS)
    [ev] = evaluate_record(shipped.get(protocol), _transport(mode, f"{filler}, {wording}"), AS_OF)
    assert ev.outcome.id != "autonomous", (wording, ev.steps)
    assert ev.outcome.id in ("no-criterion", "side-effects"), (wording, ev.steps)


AUTONOMOUS = ["patient autonome", "se déplace seul", "se déplace seule", "autonome pour ses déplacements",
              "se déplace par ses propres moyens", "se déplace sans aide", "walks unaided", "independently mobile"]


@pytest.mark.parametrize("mode, protocol", [("Taxi conventionné", "REF-TRANSPORT-ASSIS"),
                                            ("Transport en ambulance", "REF-TRANSPORT-AMBULANCE")])
@pytest.mark.parametrize("seed, wording", list(enumerate(AUTONOMOUS)))
def test_affirmed_autonomy_without_condition_calls_for_personal_transport(shipped: ProtocolSet, mode: str,
                                                                           protocol: str, seed: int,
                                                                           wording: str) -> None:
    import random

    rng = random.Random(seed)
    filler = rng.choice(["consultation de suivi", "rendez-vous en cardiologie", "contrôle post-opératoire"])
    text = rng.choice([f"{filler}, {wording}", f"{wording} ; {filler}"])
    [ev] = evaluate_record(shipped.get(protocol), _transport(mode, text), AS_OF)
    assert (ev.outcome.id, ev.outcome.verdict) == ("autonomous", "off-protocol"), (text, ev.steps)


def test_a_seated_transport_reason_without_any_condition_is_off_protocol(shipped: ProtocolSet) -> None:
    """The référentiel (arrêté du 23 décembre 2006, art. 1 to 3) is read whole: when neither an
    ambulance nor a seated transport can be prescribed, only a personal vehicle or public transport can."""
    [ev] = evaluate_record(shipped.get("REF-TRANSPORT-ASSIS"), _transport("Taxi conventionné", "consultation de suivi"),
                           AS_OF)
    assert (ev.outcome.id, ev.outcome.verdict, ev.outcome.severity) == ("no-criterion", "off-protocol", "info")


def test_a_named_treatment_without_its_side_effect_risk_names_the_datum(shipped: ProtocolSet) -> None:
    [ev] = evaluate_record(shipped.get("REF-TRANSPORT-ASSIS"), _transport("VSL", "séance d'hémodialyse"), AS_OF)
    assert ev.outcome.verdict == "undetermined"
    assert any("effets secondaires" in m.detail("fr") for m in ev.missing), ev.missing


def test_autonomous_patient_finding_names_the_alternative(shipped: ProtocolSet) -> None:
    [ev] = evaluate_record(shipped.get("REF-TRANSPORT-ASSIS"), _transport("VSL", "patient autonome"), AS_OF)
    assert (ev.outcome.verdict, ev.outcome.severity) == ("off-protocol", "warning")
    assert "véhicule personnel" in ev.outcome.alternatives["fr"].lower()


def test_transport_recognition_ignores_other_orders(shipped: ProtocolSet) -> None:
    for text in ("IRM lombaire", "Transferrine", "Ferritine", "Échographie thyroïdienne"):
        for pid in ("REF-TRANSPORT-AMBULANCE", "REF-TRANSPORT-ASSIS"):
            assert evaluate_record(shipped.get(pid), _transport(text, "x"), AS_OF) == [], (text, pid)


def test_missing_transport_justification_is_named(shipped: ProtocolSet) -> None:
    [ev] = evaluate_record(shipped.get("REF-TRANSPORT-AMBULANCE"), _transport("ambulance", None), AS_OF)
    assert ev.outcome.verdict == "undetermined"
    assert any("déficience" in m.detail("fr") for m in ev.missing), ev.missing


# --- sources ------------------------------------------------------------------------------------

#: sites that host copies of other publishers' documents: never a citation
COPY_SITES = ("scribd.com", "studylibfr.com", "pdffox.com", "doczz", "pdfslide", "fdocuments", "vdocuments",
              "docplayer", "readkong", "yumpu", "123dok", "youscribe", "coek.info", "docslib")

#: HAS documents still cited through a search-result page. Empty since the plain X-ray protocols were
#: re-based on the ADERIM sheets; it must stay empty.
PENDING_SEARCH_PAGES: set[str] = set()


def test_no_source_is_a_third_party_copy(shipped: ProtocolSet) -> None:
    bad = [(p.id, s.url) for p in shipped.protocols for s in p.sources
           if any(site in (urlparse(s.url).hostname or "") for site in COPY_SITES)]
    assert not bad, bad


def test_no_source_is_a_bare_home_page(shipped: ProtocolSet) -> None:
    bad = [(p.id, s.url) for p in shipped.protocols for s in p.sources if urlparse(s.url).path in ("", "/")]
    assert not bad, bad


def test_search_result_pages_only_where_still_pending(shipped: ProtocolSet) -> None:
    searching = {p.id for p in shipped.protocols for s in p.sources
                 if "resultat-de-recherche" in s.url or "?text=" in s.url}
    assert searching == PENDING_SEARCH_PAGES


def test_every_protocol_states_the_year_and_a_dated_title(shipped: ProtocolSet) -> None:
    for p in shipped.protocols:
        for s in p.sources:
            assert 1990 <= int(s.year) <= 2026, (p.id, s.year)


def test_new_protocols_of_issue_20_are_shipped_with_samples(shipped: ProtocolSet) -> None:
    services = [p for p in shipped.protocols if p.kind in ("imaging", "biology")]
    transport = [p for p in shipped.protocols if p.kind == "transport"]
    assert len(services) >= 10 + 12
    assert len(transport) >= 1
    fail_named = {json.loads(e.read_text(encoding="utf-8"))["findings"][0]["evidence"]["protocol"]
                  for e in (SAMPLES / "rules").glob("OP001/fail-*.expect")}
    assert {p.id for p in services + transport} <= fail_named


# --- point in time: a recommendation applies from its own date ------------------------------------


@pytest.mark.parametrize("ordered, outcome", [
    (date(2025, 6, 1), "before-opinion"),      # before the HAS opinion of 17 November 2025: silent
    (date(2025, 11, 16), "before-opinion"),
    (date(2025, 11, 17), "replace"),
    (date(2026, 1, 10), "replace"),
    (None, "no-date"),
])
def test_esr_is_judged_against_the_opinion_in_force_on_the_order_day(shipped: ProtocolSet, ordered: date | None,
                                                                    outcome: str) -> None:
    order = ServiceOrder(ref="ServiceRequest/v", status="active", intent="order",
                         code=Concept(text="Vitesse de sédimentation"), authored_on=ordered)
    record = PatientRecord(Patient("Patient/v", date(1960, 1, 1), "female"), service_orders=[order])
    [ev] = evaluate_record(shipped.get("HAS-VITESSE-SEDIMENTATION"), record, AS_OF)
    assert ev.outcome.id == outcome


def test_ordered_since_needs_an_iso_date(tmp_path: Path) -> None:
    new_protocol("HAS-DATE", kind="biology", protocols_dir=tmp_path, samples_dir=tmp_path / "s")
    path = tmp_path / "has-date.xml"
    text = path.read_text(encoding="utf-8").replace("<reasonGiven/>", '<orderedSince date="17/11/2025"/>', 1)
    path.write_text(text, encoding="utf-8")
    [problem] = validate_files([path])
    assert "<orderedSince> attribute 'date'" in problem


def test_every_act_recognises_its_own_labels(shipped: ProtocolSet) -> None:
    """An order worded like the act's own French or English label is recognised (a label the
    patterns miss means a pattern too narrow for the way the act is written)."""
    from checker.protocols.engine import concept_matches

    missed = [(p.id, a.id, label) for p in shipped.protocols for a in p.acts for label in a.labels.values()
              if not concept_matches(a.matcher, Concept(text=label))]
    assert not missed, missed


AMBULANCE_NEEDS = ["position allongée obligatoire", "transport en position demi-assise", "brancardage",
                   "portage dans les escaliers", "oxygénothérapie", "surveillance par une personne qualifiée",
                   "conditions d'asepsie"]
FILLERS = ["consultation de suivi", "séance de dialyse", "rendez-vous en radiothérapie", "hospitalisation de jour"]


@pytest.mark.parametrize("seed, need", list(enumerate(AMBULANCE_NEEDS)))
def test_ambulance_needs_count_when_affirmed_and_not_when_denied(shipped: ProtocolSet, seed: int, need: str) -> None:
    """Seeded wordings over the whole list of ambulance conditions of the référentiel: an affirmed
    condition justifies the ambulance, the same condition denied (« pas de », « sans ») does not."""
    import random

    rng = random.Random(seed)
    filler = rng.choice(FILLERS)
    proto = shipped.get("REF-TRANSPORT-AMBULANCE")
    [ev] = evaluate_record(proto, _transport("Transport en ambulance", f"{filler}, {need}"), AS_OF)
    assert ev.outcome.id == "conform", (need, ev.steps)
    denied = rng.choice(["pas de", "sans"])
    [ev] = evaluate_record(proto, _transport("Transport en ambulance", f"{filler}, {denied} {need}"), AS_OF)
    assert ev.outcome.id == "no-criterion", (denied, need, ev.steps)
