"""The wording of every output, in one catalogue per language, and CLDR numbers, money and dates.

It sits in the lowest layer so that the findings model can word a finding's message in either
language after the fact; :mod:`checker.formats.catalogue` re-exports it for the formatters.

Wording lives in ``checker/formats/messages/<lang>.toml`` (one TOML table per kind of key:
``label``, ``category``, ``level``, ``severity``, ``report`` …); a key is looked up as
``"table.key"``. Both languages hold the same keys (``tests/test_catalogue.py``). Numbers, amounts
of money and dates follow the language's CLDR conventions through Babel ("16,91 €" in French,
"€16.91" in English). See docs/messages.md.
"""

from __future__ import annotations

import tomllib
from datetime import date
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent

from checker.memo import holds_request_words

LANGS = ("fr", "en")
_DIR = Path(__file__).parent / "formats" / "messages"
_LOCALES = {"fr": "fr_FR", "en": "en_GB"}


@cache
def catalogue(lang: str) -> dict[str, dict[str, str]]:
    """The whole catalogue of ``lang`` (French for an unknown language)."""
    lang = lang if lang in LANGS else "fr"
    with (_DIR / f"{lang}.toml").open("rb") as f:
        return tomllib.load(f)


def keys(lang: str) -> set[str]:
    """Every ``table.key`` of ``lang``'s catalogue."""
    return {f"{table}.{k}" for table, entries in catalogue(lang).items() for k in entries}


def msg(lang: str, key: str, **params: Any) -> str:
    """The wording of ``key`` (``"table.key"``) in ``lang``, with ``params`` filled in.

    An unknown key raises :class:`KeyError`: a missing message is a defect, not a silent fallback."""
    table, _, name = key.partition(".")
    text = catalogue(lang)[table][name]
    return text.format(**params) if params else text


def word(lang: str, table: str, code: str | None) -> str:
    """A code's wording (a category, level, severity …); the code itself when it has none."""
    if not code:
        return ""
    return catalogue(lang).get(table, {}).get(code, code)


def table(lang: str, name: str) -> dict[str, str]:
    return catalogue(lang)[name]


def _locale(lang: str) -> str:
    return _LOCALES.get(lang, _LOCALES["fr"])


def number(value: float, lang: str, decimals: int = 0) -> str:
    """``12 345`` / ``12,345`` (CLDR grouping and decimal signs), with exactly ``decimals`` digits."""
    if value and type(value) in (int, float):  # remembered (findings repeat a few doses); never ±0
        return _number(value, lang, decimals)
    return _number.__wrapped__(value, lang, decimals)


@lru_cache(maxsize=4096, typed=True)
def _number(value: float, lang: str, decimals: int) -> str:
    fmt = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, format=fmt, locale=_locale(lang))


def percent(value: float, lang: str, decimals: int = 1) -> str:
    """``value`` given in percent (``12.5`` → ``12,5 %`` / ``12.5%``)."""
    pattern = Locale.parse(_locale(lang)).percent_formats[None].pattern  # "#,##0 %" in French
    fmt = pattern.replace("0", "0." + "0" * decimals, 1) if decimals else pattern
    return format_percent(value / 100, format=fmt, locale=_locale(lang))


def money(amount: float, currency: str, lang: str, decimals: int | None = None) -> str:
    """``16,91 €`` / ``€16.91``; ``16,91 MAD``; an amount without currency is a plain number.
    ``decimals`` overrides the currency's digits (a unit price to the hundredth of a cent: ``0,0123 €``)."""
    if amount and type(amount) in (int, float):  # remembered: an audit words the same prices again and again
        return _money(amount, currency, lang, decimals)
    return _money.__wrapped__(amount, currency, lang, decimals)


@lru_cache(maxsize=8192, typed=True)
def _money(amount: float, currency: str, lang: str, decimals: int | None) -> str:
    if not currency:
        return number(amount, lang, 2 if decimals is None else decimals)
    if decimals is None:
        return format_currency(amount, currency, locale=_locale(lang))
    return format_currency(amount, currency, format=_currency_format(lang, decimals), currency_digits=False,
                           locale=_locale(lang))


@lru_cache(maxsize=64)
def _currency_format(lang: str, decimals: int) -> str:
    """The language's currency pattern with ``decimals`` digits (the CLDR data is parsed once)."""
    pattern = Locale.parse(_locale(lang)).currency_formats["standard"].pattern
    return pattern.replace("0.00", "0" + ("." + "0" * decimals if decimals else ""), 1)


def amounts(by_currency: dict[str, float], lang: str) -> str:
    """Several currencies joined (``16,91 € + 3,00 MAD``); ``0`` formatted when empty."""
    if not by_currency:
        return money(0, "EUR", lang) if lang else "0"
    return " + ".join(money(v, cur, lang) for cur, v in sorted(by_currency.items()))


def day(value: str | date | None, lang: str) -> str:
    """An ISO date as the language writes it (``15 janv. 2026`` / ``15 Jan 2026``); other text as is."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            when = date.fromisoformat(value[:10])
        except ValueError:
            return value
    else:
        when = value
    return _day(when, lang)


@lru_cache(maxsize=8192)
def _day(when: date, lang: str) -> str:
    """Remembered: findings word the same few order dates again and again (within a check: the
    dates are a request's, forgotten with its words)."""
    return format_date(when, format="medium", locale=_locale(lang))


holds_request_words(_day.cache_clear)
