"""The wording catalogue: both languages hold the same keys, every code a formatter words has a
message, and French output is French throughout (categories, levels, money, dates)."""

from __future__ import annotations

import re
import string

import pytest

from checker.findings import CATEGORIES, Finding, InputCounts, Report, Severity, Source
from checker.formats import render
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
