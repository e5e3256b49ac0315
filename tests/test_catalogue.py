"""The wording catalogue: both languages hold the same keys, every code a formatter words has a
message, and French output is French throughout (categories, levels, money, dates)."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path
import pytest

from checker.findings import (
    CATEGORIES,
    SUMMARY_MAX,
    Amount,
    Finding,
    InputCounts,
    Message,
    Quantity,
    Report,
    Saving,
    Severity,
    Source,
    Word,
    Words,
    _Formatter,
)
from checker.formats import render
from checker.referentials import default_referentials
from checker.formats.catalogue import LANGS, catalogue, day, keys, money, msg, number, percent

LEVELS = ("CI", "AD", "PE", "APEC", "off-protocol", "undetermined")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_has_both_languages() -> None:
    fr, en = keys("fr"), keys("en")
    assert fr == en, f"only in fr: {sorted(fr - en)}; only in en: {sorted(en - fr)}"


def test_both_languages_take_the_same_parameters_and_no_message_is_empty() -> None:
    for key in sorted(keys("fr")):
        table, _, name = key.partition(".")
        texts = {lang: catalogue(lang)[table][name] for lang in LANGS}
        assert all(t.strip() for t in texts.values()), key
        assert _fields(texts["fr"]) == _fields(texts["en"]), key


@pytest.mark.parametrize("table, codes", [("category", CATEGORIES), ("category_plural", CATEGORIES),
                                          ("level", LEVELS), ("severity", [s.value for s in Severity]),
                                          ("severity_upper", [s.value for s in Severity])])
def test_every_code_has_a_message(table: str, codes: tuple[str, ...]) -> None:
    for lang in LANGS:
        missing = [c for c in codes if c not in catalogue(lang)[table]]
        assert not missing, f"{lang}.{table} lacks {missing}"


def test_unknown_key_is_an_error_not_a_silent_fallback() -> None:
    with pytest.raises(KeyError):
        msg("fr", "report.no_such_message")


def test_cldr_numbers_money_dates() -> None:
    assert money(16.91, "EUR", "fr") == "16,91\u00a0€" and money(16.91, "EUR", "en") == "€16.91"
    assert money(1234.5, "MAD", "fr") == "1\u202f234,50\u00a0MAD"
    assert number(123456, "fr") == "123\u202f456" and number(123456, "en") == "123,456"
    assert percent(12.5, "fr") == "12,5\u00a0%" and percent(12.5, "en") == "12.5%"
    assert day("2026-01-15", "fr") == "15 janv. 2026" and day("2026-01-15", "en") == "15 Jan 2026"


def _report(lang: str) -> Report:
    src = Source("ANSM", "https://ansm.sante.fr/", "2023-09")
    findings = [Finding(rule="R", category=c, severity=Severity.WARNING, summary="s", detail="d", source=src,
                        patient="Patient/p", implicated=(f"MedicationRequest/{i}",), level=LEVELS[i % len(LEVELS)],
                        suggestion={"saving": {"amount": 16.91, "currency": "EUR"}}, key=str(i))
                for i, c in enumerate(CATEGORIES)]
    return Report("pertinence", "0.1.0", (), "2026-01-15", "fr", InputCounts(1, 8, 8, 0, 0), findings, [], lang)


ENGLISH_WORDS = re.compile(r"\b(duplicate|off-protocol|off protocol|undetermined|cheaper-equivalent|"
                           r"contraindication|unidentified|critical|warning)\b")


@pytest.mark.parametrize("fmt", ["text", "html"])
def test_french_output_is_french(fmt: str) -> None:
    out = render(_report("fr"), fmt)
    visible = re.sub(r"(?s)<style>.*?</style>|<script>.*?</script>", " ", out)
    visible = re.sub(r"<[^>]+>", " ", visible) if fmt == "html" else visible  # the text a reader sees
    assert not ENGLISH_WORDS.findall(visible)
    for word in ("doublon", "hors protocole", "équivalent moins cher", "indéterminé", "contre-indication"):
        assert word in visible, word
    assert "16,91\u00a0€" in visible and "EUR" not in visible
    assert "15 janv. 2026" in visible  # the reference date, CLDR French


def test_english_output_words_money_the_english_way() -> None:
    out = render(_report("en"), "text")
    assert "€16.91" in out and "duplicate" in out and "undetermined" in out


# --- Rules' message codes -------------------------------------------------------------------------

RULES_DIR = Path(__file__).resolve().parents[1] / "checker" / "rules"


def _emitted_messages() -> list[tuple[str, str, bool, set[str] | None]]:
    """(file, code, has a summary, parameter names or None when not literal) of every ``Message(...)``
    a rule builds. A code with a dot (``IX001.many-lines``) is a sentence added to another message's
    detail and has no summary; any other code has both."""
    found: list[tuple[str, str, bool, set[str] | None]] = []
    for path in sorted(RULES_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Message":
                assert node.args and isinstance(node.args[0], ast.Constant), (
                    f"{path.name}:{node.lineno}: a message code must be a literal, so that this test sees it")
                params: set[str] | None = set()
                if len(node.args) > 1:
                    arg = node.args[1]
                    if isinstance(arg, ast.Dict) and all(isinstance(k, ast.Constant) for k in arg.keys):
                        params = {str(k.value) for k in arg.keys if isinstance(k, ast.Constant)}
                    else:
                        params = None
                code = str(node.args[0].value)
                found.append((path.name, code, "." not in code, params))
    return found


def test_rules_emit_message_codes() -> None:
    emitted = {code: main for _, code, main, _ in _emitted_messages()}
    assert emitted["IX001"] and not emitted["IX001.many-lines"]


@pytest.mark.parametrize("where, code, main, params", _emitted_messages(), ids=lambda v: str(v))
def test_every_message_code_a_rule_emits_is_worded_in_both_languages(
        where: str, code: str, main: bool, params: set[str] | None) -> None:
    tables = ["finding_summary", "finding_detail"] if main else ["finding_detail"]
    fields: dict[str, set[str]] = {}
    for lang in LANGS:
        for t in tables:
            assert code in catalogue(lang).get(t, {}), f"{where}: {lang}.{t} lacks {code}"
            fields.setdefault(t, _fields(catalogue(lang)[t][code]))
            assert _fields(catalogue(lang)[t][code]) == fields[t], f"{code}: {t} parameters differ between languages"
    if params is not None:  # every parameter a message uses is one the rule gives
        for t in tables:
            short = catalogue("fr")[t].get(f"{code}.short") if t == "finding_summary" else None
            for text in (catalogue("fr")[t][code], short or ""):
                missing = {f.split(".")[0].split("[")[0] for f in _fields(text)} - params
                assert not missing, f"{where}: {code} uses {missing}, which the rule does not give"


def test_every_thesaurus_theme_is_worded() -> None:
    th = default_referentials().get("ansm-thesaurus")
    themes = {t for e in th.entries for t in e.themes}
    for lang in LANGS:
        assert themes <= set(catalogue(lang)["ix_theme"]), lang


def test_a_message_is_worded_in_either_language_after_the_fact() -> None:
    m = Message("IX001", {"level": Word("ix_level", "CI"), "first": "a", "second": "b", "label_a": "A",
                          "label_b": "B", "themes": Words("ix_theme", ("bleeding",)),
                          "conduct": Word("ix_conduct", "CI")},
                (Message("IX001.many-lines", {"lines": 3, "pairs": 2}),))
    src = Source("ANSM", "", "2023-09")
    f = Finding.worded_from(m, "fr", rule="IX001", category="interaction", severity=Severity.CRITICAL,
                            source=src, patient=None, implicated=("MedicationRequest/1",))
    assert f.summary == "Contre-indication : a + b" and "Conduite : ne pas associer" in f.detail
    assert f.detail.endswith("toutes les lignes citées.")
    en = f.worded("en")
    assert en.summary == "Contraindicated: a + b" and "What to do: do not combine" in en.detail
    assert en.fingerprint == f.fingerprint
    report = Report("pertinence", "0.1.0", (), "2026-01-15", "fr", InputCounts(), [f], [], "fr")
    assert "Contraindicated: a + b" in render(report, "json", lang="en")
    assert "Contre-indication : a + b" in render(report, "json")


def test_the_summary_is_cut_to_140_characters_in_one_place() -> None:
    long = "x" * 200
    m = Message("IX001", {"level": Word("ix_level", "PE"), "first": long, "second": "b", "label_a": "A",
                          "label_b": "B", "themes": Words("ix_theme", ()), "conduct": Word("ix_conduct", "PE")})
    for lang in LANGS:
        assert len(m.summary(lang)) <= SUMMARY_MAX and m.summary(lang).endswith("…")


def test_typed_money_and_quantities_are_worded_the_cldr_way() -> None:
    assert _Formatter("fr").format("{a} / {q}", a=Amount(16.91, "EUR"), q=Quantity(3975, "mg")) == \
        "16,91\u00a0€ / 3\u202f975 mg"
    assert _Formatter("en").format("{a} / {q}", a=Amount(16.91, "EUR"), q=Quantity(3975, "mg")) == "€16.91 / 3,975 mg"


def test_savings_are_read_from_a_typed_saving() -> None:
    src = Source("x")
    f = Finding("EQ001", "cheaper-equivalent", Severity.INFO, "s", "d", src, "Patient/p", ("MedicationRequest/1",),
                suggestion={"saving": Saving(10.0, "EUR", "treatment", 120.0)}, evidence={"substance": "s"})
    assert f.saving == Saving(10.0, "EUR", "treatment", 120.0)
    report = Report("pertinence", "0.1.0", (), "2026-01-15", "fr", InputCounts(), [f], [], "fr")
    assert report.savings()["total"] == {"EUR": 120.0}
    assert f.to_dict()["suggestion"] == {"saving": {"amount": 10.0, "currency": "EUR", "period": "treatment",
                                                    "per_year": 120.0}}


def test_an_over_long_summary_takes_the_codes_shorter_wording() -> None:
    m = Message("DU001", {"substance": "paracétamol", "label_a": "A" * 80, "label_b": "B" * 80})
    assert m.summary("fr") == "Même substance dans deux lignes : paracétamol"
    assert m.summary("en") == "Same substance twice: paracetamol".replace("paracetamol", "paracétamol")


def test_the_fhir_narrative_is_worded_by_the_catalogue() -> None:
    """checker/formats/fhir.py keeps no wording of its own: its proposed actions and narrative
    labels are catalogue tables, held in both languages."""
    import checker.formats.fhir as fhir

    source = Path(fhir.__file__).read_text(encoding="utf-8")
    worded = [n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)
              and re.search(r"[à-ÿ]", n.value)]
    assert worded == [], worded
    for table in ("fhir_action", "fhir_text"):
        assert catalogue("fr")[table].keys() == catalogue("en")[table].keys(), table
    assert {"proposal", "replace", "saving", "source", "labelled", "list_sep"} <= set(catalogue("fr")["fhir_text"])


def test_the_partial_check_card_is_worded_by_the_catalogue() -> None:
    """The CDS service's "partial check" card keeps no wording table of its own: every kind of missing
    data the service reports (checker.service.prefetch.PREFETCH keys it can miss) is worded in both languages."""
    import checker.service.app as app_module

    assert not hasattr(app_module, "_MISSING_TEXT")
    for lang in LANGS:
        t = catalogue(lang)["cds_partial"]
        assert {"patient", "medications", "conditions", "allergies", "renal", "weight", "pregnancy", "results",
                "summary", "detail", "errors", "several", "errors_heading", "error_line"} <= set(t)
