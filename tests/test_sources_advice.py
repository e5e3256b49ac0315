"""Sources and advice as a doctor reads them: a finding cites the source that decided it (background
documents go to the evidence), a CDS card's source label is a short title and year, and every
proposal names drugs, never a resource id or an action code."""

from __future__ import annotations

import re

import pytest

from checker import check
from checker.findings import Report
from checker.formats import render
from checker.formats.advice import advice, short_cite
from checker.formats.cds_hooks import cards
from tests.conftest import SAMPLES

AS_OF = "2026-01-15"
ACTION_CODES = re.compile(r"stop-or-replace|remove-duplicate|measure-renal-function|reduce-dose|keep-one|"
                          r"reassess|\baction\b")


@pytest.fixture(scope="module")
def samples_report() -> Report:
    return check(str(SAMPLES), as_of=AS_OF)


def test_protocol_findings_cite_the_deciding_recommendation_only(samples_report: Report) -> None:
    from checker.referentials import default_referentials

    protocols = {p.id: p for p in default_referentials().get("protocols").protocols}
    seen = 0
    for f in samples_report.findings:
        if f.rule not in ("OP001", "OP002"):
            continue
        p = protocols[f.evidence["protocol"]]
        assert f.source.label == p.sources[0].cite()
        for other in p.sources[1:]:
            assert other.title not in f.source.label
            assert other.cite() in [b["citation"] for b in f.evidence["background_sources"]]
        seen += len(p.sources) > 1
    assert seen, "the samples should include a protocol with a background source"


def test_fever_definition_is_evidence_not_the_source_of_the_low_back_pain_finding(samples_report: Report) -> None:
    lumbar = [f for f in samples_report.findings if f.evidence.get("protocol") == "HAS-LOMBALGIE-IMAGERIE"]
    assert lumbar
    for f in lumbar:
        assert "Brighton" not in f.source.cite() and "Fever" not in f.source.label
        assert any("Brighton" in b["citation"] for b in f.evidence["background_sources"])


def test_card_source_label_is_short_title_and_year(samples_report: Report) -> None:
    by_fp = {f.fingerprint: f for f in samples_report.findings}
    for card in cards(samples_report):
        f = by_fp[card["extension"]["dev.pertinence.finding"]["fingerprint"]]
        label = card["source"]["label"]
        assert len(label) <= 100, label
        year = re.search(r"(19|20)\d\d", f.source.edition or "")
        if year:
            assert year.group(0) in label, (label, f.source.edition)
        assert card["source"].get("url") == (f.source.url or None)
        assert f.source.label.split(" (")[0][:20] in card["detail"] or f.source.label[:20] in card["detail"]


def test_short_cite_examples() -> None:
    assert short_cite("STOPP/START v2 (O'Mahony et al., Age Ageing 2015) ; codage Huibers et al. 2019", "v2") == \
        "STOPP/START v2 (2015)"
    assert short_cite("HAS, « Prise en charge du patient présentant une lombalgie commune — fiche mémo, mars 2019 "
                      "(drapeaux rouges ; sans drapeau rouge, pas d'imagerie) », 2019", "2019") == \
        "HAS, « Prise en charge du patient présentant une lombalgie commune » (2019)"


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_proposals_name_drugs_never_ids_or_action_codes(samples_report: Report, lang: str) -> None:
    n = 0
    for f in samples_report.findings:
        text = advice(f.to_dict(), lang)
        if not f.suggestion:
            continue
        if f.suggestion.get("action") or f.suggestion.get("with"):
            assert text, f.rule
            n += 1
        assert "MedicationRequest/" not in text and "ServiceRequest/" not in text, text
        assert not ACTION_CODES.search(text), text
    assert n > 10


def test_rendered_outputs_carry_no_action_codes(samples_report: Report) -> None:
    for fmt in ("text", "html"):
        out = render(samples_report, fmt)
        for line in out.splitlines():
            if "Proposition" in line or "→" in line:
                assert not ACTION_CODES.search(re.sub(r"<[^>]+>", "", line)), line
        assert "stop-or-replace" not in out and "action :" not in out


def test_the_clarithromycin_interaction_names_both_drugs() -> None:
    report = check(str(SAMPLES / "demo"), as_of=AS_OF)
    ci = next(f for f in report.findings if f.level == "CI")
    text = advice(ci.to_dict(), "fr")
    assert "clarithromycine" in text.lower() and "simvastatine" in text.lower() and text.startswith("Arrêter")


def test_every_action_code_a_rule_emits_has_a_message() -> None:
    from pathlib import Path

    from checker.formats.catalogue import LANGS, catalogue

    root = Path(__file__).resolve().parents[1] / "checker"
    found: set[str] = set()
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r'"action":\s*(\{[^}]*\}|"[a-z-]+")', text):
            found.update(re.findall(r':\s*"([a-z]+(?:-[a-z]+)*)"', m.group(1)) if m.group(1).startswith("{")
                         else [m.group(1).strip('"')])
    assert {"stop-or-replace", "avoid-or-monitor", "monitor", "consider"} <= found
    for lang in LANGS:
        missing = sorted(found - set(catalogue(lang)["action"]))
        assert not missing, f"{lang}: no wording for {missing}"
