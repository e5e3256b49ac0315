"""The findings model: one :class:`Finding` per problem, gathered in a :class:`Report`.

Every output format renders a :class:`Report`; nothing else crosses from rules to formatters.
"""

from __future__ import annotations

import functools
import hashlib
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from enum import Enum
from fractions import Fraction
from typing import Any, Literal, Union

import orjson

from checker.memo import holds_request_words
from checker.wording import catalogue, day, money, msg, number

VERSION = "0.1.0"
"""The package version (``checker.__version__``), written in every :class:`Report`."""

Category = Literal[
    "interaction",
    "duplicate",
    "contraindication",
    "allergy",
    "dosage",
    "cheaper-equivalent",
    "off-protocol",
    "unidentified",
]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]


class Severity(str, Enum):
    """How urgently a prescriber should look; ordered ``info`` < ``warning`` < ``critical``."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        """Accept ``"warning"``, ``"WARNING"`` or a :class:`Severity`; clear error otherwise."""
        if isinstance(value, Severity):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ValueError(f"unknown severity {value!r}: use one of info, warning, critical") from None


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class Source:
    """The authority behind a finding: label, URL and edition (date or version)."""

    label: str
    url: str = ""
    edition: str = ""

    def cite(self) -> str:
        return f"{self.label} ({self.edition})" if self.edition else self.label


SUMMARY_MAX = 140
"""The one bound on a finding's summary, in every language (longer wording is cut with "…")."""


@dataclass(frozen=True, slots=True)
class Amount:
    """A sum of money in a currency (ISO 4217), worded the language's CLDR way (``16,91 €``)."""

    value: float
    currency: str
    decimals: int | None = None
    """Digits after the decimal sign; ``None``: the currency's own (2 for EUR and MAD)."""
    _key: Any = field(default=None, init=False, repr=False, compare=False)
    """Its token in message keys (:func:`_typed_token`), once made (rules share such values)."""


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number with a unit (``3975`` ``mg``), the number worded the language's CLDR way."""

    value: float
    unit: str
    decimals: int = 0
    _key: Any = field(default=None, init=False, repr=False, compare=False)
    """Its token in message keys (:func:`_typed_token`), once made (rules share such values)."""


@dataclass(frozen=True, slots=True)
class Word:
    """A code that the catalogue table ``table`` words (a level, a theme, a missing datum …)."""

    table: str
    code: str
    _key: Any = field(default=None, init=False, repr=False, compare=False)
    """Its token in message keys (:func:`_typed_token`), once made (rules share such values)."""


@dataclass(frozen=True, slots=True)
class Words:
    """Several codes of one catalogue table, worded and joined by ``sep``."""

    table: str
    codes: tuple[str, ...]
    sep: str = "; "
    _key: Any = field(default=None, init=False, repr=False, compare=False)
    """Its token in message keys (:func:`_typed_token`), once made (rules share such values)."""


@dataclass(frozen=True, slots=True)
class Localized:
    """A text a referential gives in both languages (a class label of patient-risks.tsv …)."""

    fr: str
    en: str
    _key: Any = field(default=None, init=False, repr=False, compare=False)
    """Its token in message keys (:func:`_typed_token`), once made (rules share such values)."""


@dataclass(frozen=True, slots=True)
class Phrases:
    """Several phrases, each a :class:`Message` whose ``finding_detail`` wording is filled in, joined
    by ``sep`` (``"4000 mg par jour (max 3000 mg); 1500 mg par prise (max 1000 mg)"``)."""

    items: tuple[Message, ...]
    sep: str = "; "
    _key: Any = field(default=None, init=False, repr=False, compare=False)
    """Its token in message keys (:func:`_typed_token`), once made; ``False`` when it has none. Rules
    share a phrase value between the findings of the same medication: it is keyed once."""
    _worded: Any = field(default=None, init=False, repr=False, compare=False)
    """Its text, with the language, once worded (:func:`_phrases_text`). Its messages are not
    changed once worded, as a :class:`Message`'s parameters."""


Param = Union[str, int, float, date, Amount, Quantity, Word, Words, Localized, Phrases]
"""A typed message parameter: plain text (a drug label) or a value the language words."""


@dataclass(frozen=True, slots=True)
class Saving:
    """Money a suggestion saves: ``amount`` per ``period`` and, summed by the run, ``per_year``."""

    amount: float | None
    """Over ``period``; ``None`` when only the difference per unit is known (no dosage, no quantity)."""
    currency: str
    period: str = ""
    per_year: float | None = None
    extra: tuple[tuple[str, Any], ...] = ()
    """Further figures, in order (``per_unit``, ``days``, ``per_year_basis``, ``per_day`` …)."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Saving:
        known = {"amount", "currency", "period", "per_year"}
        return cls(None if d.get("amount") is None else float(d["amount"]), str(d.get("currency", "")),
                   str(d.get("period", "")), None if d.get("per_year") is None else float(d["per_year"]),
                   tuple((k, v) for k, v in d.items() if k not in known))

    def get(self, name: str, default: Any = None) -> Any:
        """One of the further figures (``extra``) by name."""
        return dict(self.extra).get(name, default)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"amount": self.amount, "currency": self.currency, "period": self.period}
        if self.per_year is not None:
            out["per_year"] = self.per_year
        return {**out, **dict(self.extra)}

    @property
    def yearly(self) -> float:
        """The amount counted per year in the run's savings (0 when no amount is known)."""
        if self.per_year is not None:
            return self.per_year
        return self.amount if self.amount is not None else 0.0


@functools.lru_cache(maxsize=4096)
def _parsed(template: str) -> tuple[tuple[str, str | None, str, str | None], ...] | None:
    """A catalogue template split into (literal, field, format spec, conversion), or ``None`` when a
    field is positional or its format spec holds a field (left to :meth:`string.Formatter.vformat`)."""
    parts = tuple((lit, name, spec or "", conv) for lit, name, spec, conv in string.Formatter().parse(template))
    if any(name is not None and (not name or name[0].isdigit() or "{" in (spec or "")) for _, name, spec, _ in parts):
        return None
    return parts


_Template = tuple[str, tuple[tuple[str, str | None, str, str | None, bool], ...] | None, "_Formatter"]
_TEMPLATES: dict[tuple[str, str, str, str], _Template] = {}
"""What :meth:`Message._fill` needs of a catalogue message, by language, table, code and suffix: its
template, the template parsed (:func:`_parsed`, each field marked when it is a plain name) and the
language's formatter. Catalogue data only (no request words), bounded by the catalogue's size."""


def _template(lang: str, table: str, code: str, suffix: str) -> _Template:
    template = msg(lang, f"{table}.{code}{suffix}")  # an unknown message raises, and is not kept
    parsed = _parsed(template)
    parts = None if parsed is None else tuple((*p, p[1] is not None and p[1].isidentifier()) for p in parsed)
    found = _TEMPLATES[(lang, table, code, suffix)] = (template, parts, _Formatter(lang))
    return found


class _Formatter(string.Formatter):
    def __init__(self, lang: str) -> None:
        self.lang = lang

    def format_field(self, value: Any, format_spec: str) -> str:
        cap = format_spec == "cap"
        spec = "" if cap else format_spec
        if isinstance(value, Amount):
            text = money(value.value, value.currency, self.lang, value.decimals)
        elif isinstance(value, Quantity):
            text = f"{number(value.value, self.lang, value.decimals)} {value.unit}".rstrip()
        elif isinstance(value, Word):
            text = msg(self.lang, f"{value.table}.{value.code}")
        elif isinstance(value, Words):
            text = value.sep.join(msg(self.lang, f"{value.table}.{c}") for c in value.codes)
        elif isinstance(value, Phrases):
            text = _phrases_text(value, self.lang)
        elif isinstance(value, Localized):
            text = value.en if self.lang == "en" else value.fr
        elif isinstance(value, date):
            text = day(value, self.lang)
        else:
            text = format(value, spec)
        return text.capitalize() if cap else text


@dataclass(frozen=True, slots=True)
class Message:
    """What a rule says, as a code with typed parameters; the catalogue words it in each language.

    ``code`` names the ``finding_summary`` and ``finding_detail`` messages (``"IX001"``); each of
    ``extra`` adds one more sentence to the detail (a ``finding_detail`` message of its own)."""

    code: str
    params: Mapping[str, Param] = field(default_factory=dict)
    extra: tuple[Message, ...] = ()
    _texts: Any = field(default=None, init=False, repr=False, compare=False)
    """The texts of the messages of this value, by language and table, shared through
    :data:`_WORDED` (looked up once: the summary and the detail of a finding share the look-up);
    ``False`` when a parameter cannot key them. A message's parameters are not changed once it is
    worded."""
    _key: Any = field(default=None, init=False, repr=False, compare=False)
    """Its token (:func:`_message_token`), once made; ``False`` when it has none (a message shared
    as an extra sentence or a phrase is keyed once)."""

    def codes(self) -> list[str]:
        return [self.code, *(c for m in self.extra for c in m.codes())]

    def _fill(self, lang: str, table: str, suffix: str = "") -> str:
        found = _TEMPLATES.get((lang, table, self.code, suffix))
        if found is None:
            found = _template(lang, table, self.code, suffix)
        template, parts, formatter = found
        if parts is None:
            return formatter.vformat(template, (), dict(self.params))
        out = []  # what vformat does, the template parsed once (every finding is worded on creation)
        params = self.params
        for literal, name, spec, conversion, named in parts:
            out.append(literal)
            if name is None:
                continue
            value = params[name] if named else formatter.get_field(name, (), params)[0]
            if conversion is None and not spec and type(value) is str:
                out.append(value)  # what format_field gives a plain text
            else:
                out.append(formatter.format_field(formatter.convert_field(value, conversion), spec))
        return "".join(out)

    def text(self, lang: str, table: str) -> str:
        """The message worded from catalogue table ``table``, each ``extra`` message after it."""
        return "".join([self._fill(lang, table), *(" " + m.text(lang, table) for m in self.extra)])

    def summary(self, lang: str) -> str:
        """The summary in ``lang``, within :data:`SUMMARY_MAX` characters (the one place it is bound):
        over the bound, the code's shorter wording (``"<code>.short"``) when the catalogue has one,
        then a cut with "…". Remembered by the message's value (see :func:`_texts_of`)."""
        return self._remembered(lang, "s", self._summary)

    def _remembered(self, lang: str, which: str, word: Callable[[str], str]) -> str:
        """``word(lang)``, kept with the texts of the messages of the same value (``which``: ``"s"``
        summary, ``"d"`` detail); worded afresh when the message has no value key."""
        texts = self._texts
        if texts is None:
            texts = _texts_of(self)
        if texts is False:
            return word(lang)
        text = texts.get((lang, which))
        if text is None:
            text = texts[(lang, which)] = word(lang)
        return text

    def _summary(self, lang: str) -> str:
        text = self._fill(lang, "finding_summary")
        if len(text) > SUMMARY_MAX and f"{self.code}.short" in catalogue(lang).get("finding_summary", {}):
            text = self._fill(lang, "finding_summary", ".short")
        return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 3] + "…"

    def detail(self, lang: str) -> str:
        """The detail in ``lang``, each ``extra`` sentence after it; remembered by the message's value."""
        return self._remembered(lang, "d", self._detail)

    def _detail(self, lang: str) -> str:
        return "".join([self._fill(lang, "finding_detail"), *(" " + m._fill(lang, "finding_detail") for m in self.extra)])


WORDED_ENTRIES = 20_000
"""Bound on the message values whose texts are remembered (:data:`_WORDED`), emptied when full. A
bulk report repeats the same few hundred messages with the same parameters (same drug pair, same
ceiling) over thousands of patients: 891 distinct summaries and details for 25,553 findings of the
dense slice."""
_WORDED: dict[tuple[Any, ...], dict[tuple[str, str], str]] = {}


@holds_request_words
def forget_wording() -> None:
    """Empty the remembered wording (after each check: worded texts quote a request's lines and
    values; and a test that counts the wording done starts from nothing)."""
    _WORDED.clear()
    _TOKENS.clear()


class _Unkeyed(Exception):
    """A parameter whose value cannot safely key the remembered wording (a list, a dict, a subclass…)."""


def _texts_of(message: Message) -> dict[tuple[str, str], str] | Literal[False]:
    """The texts shared by the messages of ``message``'s value (:func:`_message_key`), kept on it;
    ``False`` when a parameter is not one of the exact immutable types the key knows (the message is
    then worded afresh each time)."""
    try:
        key = _message_key(message)
    except _Unkeyed:
        object.__setattr__(message, "_texts", False)
        return False
    texts = _WORDED.get(key)
    if texts is None:
        if len(_WORDED) >= WORDED_ENTRIES:
            _WORDED.clear()
        texts = _WORDED[key] = {}
    object.__setattr__(message, "_texts", texts)
    return texts


def _message_key(m: Message) -> tuple[Any, ...]:
    """The key of ``m``'s value in :data:`_WORDED`: its code, its number of parameters, a name and a
    value key per parameter, then a token per extra message (:func:`_message_token`). A value key
    holds the value's exact type, as :func:`_value_key`'s; a typed value (a :class:`Word`, a
    :class:`Phrases` …) gives a token kept on it (:func:`_typed_token`: rules share such values
    between findings, and a key of a few texts and numbers is hashed at little cost). The tuple
    reads back one way only, so equal keys are equal values. Raises :class:`_Unkeyed` for any other
    value (tests/test_output_cost.py holds it to a key made by recursion over the messages)."""
    if type(m) is not Message:
        raise _Unkeyed
    params, extra = m.params, m.extra
    if type(m.code) is not str or type(params) is not dict or type(extra) is not tuple:
        raise _Unkeyed
    keyed: list[Any] = [m.code, len(params)]
    add = keyed.append
    for name, value in params.items():  # the common types inline (a call costs as much as the test)
        t = type(value)
        if type(name) is not str:
            raise _Unkeyed
        add(name)
        if t is str:
            add(value)
        elif t in _TYPED_VALUES:
            add(value._key or _typed_token(value))
        elif t is float:
            add((t, value) if value else (t, repr(value)))  # ±0 told apart by their text
        elif t is int or t is date:
            add((t, value))
        else:
            add(_value_key(value))
    for e in extra:
        add(e._key if type(e) is Message and e._key else _message_token(e))
    return tuple(keyed)


class _Token:
    """What stands for a value in message keys (:func:`_token`): equal only to itself. A token
    copied to another process (pickled with the value it is kept on) is a new object there, equal
    to none of that process's tokens: words are then not shared, never wrongly shared."""

    __slots__ = ()


_TOKENS: dict[tuple[Any, ...], _Token] = {}
"""Key of a value → its token (:func:`_token`). Bounded, emptied with the wording: an equal value
met later gets a new token (words not shared, never wrongly shared)."""
TOKEN_ENTRIES = 50_000


def _token(key: tuple[Any, ...]) -> _Token:
    """The token standing for the value whose key is ``key`` (equal keys, the same token)."""
    token = _TOKENS.get(key)
    if token is None:
        if len(_TOKENS) >= TOKEN_ENTRIES:
            _TOKENS.clear()
        token = _TOKENS[key] = _Token()
    return token


def _kept_token(value: Any, key_of: Callable[[Any], tuple[Any, ...]]) -> _Token:
    """The token of ``key_of(value)``, kept on ``value`` (a value shared between findings is keyed
    once); ``False`` kept there when it has none (and :class:`_Unkeyed` raised again)."""
    kept = value._key
    if kept is False:
        raise _Unkeyed
    if kept:
        return kept  # type: ignore[no-any-return]
    try:
        token = _token(key_of(value))
    except _Unkeyed:
        object.__setattr__(value, "_key", False)
        raise
    object.__setattr__(value, "_key", token)
    return token


def _message_token(m: Message) -> _Token:
    """The token of ``m``'s value (:func:`_message_key`), kept on ``m`` (an extra sentence or a
    phrase shared between findings)."""
    if type(m) is not Message:
        raise _Unkeyed
    return _kept_token(m, _message_key)


def _phrases_key(value: Phrases) -> tuple[Any, ...]:
    """A :class:`Phrases` value's key: its separator and its messages' tokens."""
    items, sep = value.items, value.sep
    if type(items) is not tuple or type(sep) is not str:
        raise _Unkeyed
    return (Phrases, sep, tuple([_message_token(m) for m in items]))


def _typed_token(value: Any) -> _Token:
    """The token of a typed parameter's value key (:func:`_value_key`, :func:`_phrases_key`), kept on it."""
    return _kept_token(value, _phrases_key if type(value) is Phrases else _value_key)


def _phrases_text(p: Phrases, lang: str) -> str:
    """The text of a :class:`Phrases` value in ``lang``: its messages' ``finding_detail`` wordings
    joined by its separator, kept on it with its language (rules share a phrase value between
    findings; a run words in one language)."""
    worded = p._worded
    if worded is not None and worded[0] == lang:
        return worded[1]  # type: ignore[no-any-return]
    text = p.sep.join(m._fill(lang, "finding_detail") for m in p.items)
    object.__setattr__(p, "_worded", (lang, text))
    return text


def _value_key(v: Any) -> Any:
    """A hashable stand-in for a parameter that is equal only for values worded the same way: the
    exact type goes with the value (``1``, ``1.0`` and ``True`` are equal in Python but are worded
    differently), ``0.0`` and ``-0.0`` are told apart, and typed values are taken field by field.
    Anything else (a container, a subclass, a ``datetime``) raises :class:`_Unkeyed`."""
    t = type(v)
    if t is str or v is None:
        return v
    if t is int or t is bool or t is date:
        return (t, v)
    if t is float:
        return (t, v) if v else (t, repr(v))
    if t is Word:
        return (t, _text_key(v.table), _text_key(v.code))
    if t is Amount:
        return (t, _value_key(v.value), _text_key(v.currency), _value_key(v.decimals))
    if t is Quantity:
        return (t, _value_key(v.value), _text_key(v.unit), _value_key(v.decimals))
    if t is Localized:
        return (t, _text_key(v.fr), _text_key(v.en))
    if t is Words:
        codes = v.codes
        if type(codes) is not tuple or not _STRINGS.issuperset(map(type, codes)):
            raise _Unkeyed
        return (t, _text_key(v.table), codes, _text_key(v.sep))
    raise _Unkeyed  # (a Phrases value is keyed by _message_key itself)


_STRINGS = frozenset({str})
_TYPED_VALUES = frozenset({Word, Words, Localized, Amount, Quantity, Phrases})
"""Parameter types whose value key is kept on the value (:func:`_typed_token`)."""


def _text_key(v: Any) -> str:
    if type(v) is not str:
        raise _Unkeyed
    return v


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem about one or more prescription lines of one patient.

    ``implicated`` lists the request resources concerned (``MedicationRequest/<id>`` …) sorted;
    ``key`` is what makes the finding unique besides rule, patient and implicated lines (for
    instance the substance pair); it feeds :attr:`fingerprint`, which never depends on where the
    resource sat in a file.
    """

    rule: str
    category: Category
    severity: Severity
    summary: str
    detail: str
    source: Source
    patient: str | None
    implicated: tuple[str, ...]
    level: str | None = None
    suggestion: dict[str, Any] | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    message: Message | None = None
    """The code and typed parameters ``summary`` and ``detail`` were worded from (``None`` for a
    finding built from prose); :meth:`worded` words it again in another language."""
    lang: str = "fr"
    """The language ``summary`` and ``detail`` are worded in; typed values of ``evidence`` (a
    :class:`Message`, a :class:`Localized` text) and of ``suggestion`` are worded in it by
    :meth:`to_dict` and :meth:`suggested`."""
    _fingerprint: str = field(default="", init=False, repr=False, compare=False)
    """:attr:`fingerprint`, once computed (it is asked for when deduplicating, sorting and writing)."""

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"finding category {self.category!r} is not one of {CATEGORIES}")
        summary = _SUMMARY_SLOT.__get__(self, Finding)
        if summary is None or _DETAIL_SLOT.__get__(self, Finding) is None:
            if self.message is None:
                raise ValueError("a finding without a message needs its summary and detail")
        elif len(summary) > SUMMARY_MAX:
            raise ValueError(f"finding summary over 140 characters ({len(summary)}): {summary!r}")
        object.__setattr__(self, "implicated", tuple(sorted(self.implicated)))

    @classmethod
    def worded_from(cls, message: Message, lang: str, **fields: Any) -> Finding:
        """A finding whose summary and detail are ``message`` worded in ``lang``, when first read
        (an output words it; counting, filtering or deduplicating findings does not)."""
        return cls(summary=LATER, detail=LATER, message=message, lang=lang, **fields)

    def worded(self, lang: str) -> Finding:
        """This finding with its summary and detail in ``lang`` (its typed evidence and suggestion
        follow; worded when first read); itself when it has no message or is in ``lang``."""
        if self.message is None or (lang == self.lang and _SUMMARY_SLOT.__get__(self, Finding) is None):
            return self
        return replace(self, summary=LATER, detail=LATER, lang=lang)

    def suggested(self) -> dict[str, Any] | None:
        """The suggestion as plain data in the finding's language (a :class:`Saving` as its dict, a
        :class:`Localized` text as the language's text)."""
        return _plain(self.suggestion, self.lang)

    @property
    def saving(self) -> Saving | None:
        """The suggestion's saving as a typed value (``None`` when it has no amount)."""
        raw = (self.suggestion or {}).get("saving")
        if isinstance(raw, Saving):
            return raw if raw.amount is not None else None
        if not raw or raw.get("amount") is None:
            return None
        return Saving.from_dict(raw)

    @property
    def fingerprint(self) -> str:
        """Stable 16-hex id from rule, patient, implicated lines and key."""
        if not self._fingerprint:
            basis = "\x1f".join([self.rule, self.patient or "", *self.implicated, self.key])
            object.__setattr__(self, "_fingerprint", hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16])
        return self._fingerprint

    def to_dict(self) -> dict[str, Any]:
        """The finding as plain JSON-ready data (the documented output fields)."""
        data = self._typed_dict()
        data["suggestion"] = _plain(self.suggestion, self.lang)
        data["evidence"] = _plain(self.evidence, self.lang)
        return data

    def to_json(self, option: int = 0) -> bytes:
        """``orjson.dumps(self.to_dict(), option=option)``, the same bytes for less work (see
        :func:`typed_json`)."""
        return typed_json(self._typed_dict, self.to_dict, self.lang, option)

    def _typed_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` with the suggestion and evidence as they are (typed values left to
        :func:`typed_json`'s ``default``)."""
        return {
            "rule": self.rule,
            "category": self.category,
            "severity": self.severity.value,
            "level": self.level,
            "patient": self.patient,
            "implicated": list(self.implicated),
            "summary": self.summary,
            "detail": self.detail,
            "source": {"label": self.source.label, "url": self.source.url, "edition": self.source.edition},
            "suggestion": self.suggestion,
            "evidence": self.evidence,
            "fingerprint": self.fingerprint,
        }


class _NotPlain(Exception):
    """A value of evidence or suggestion that :func:`typed_json` leaves to :func:`_plain`."""


def _json_default(lang: str) -> Callable[[Any], Any]:
    """orjson's ``default`` for findings in ``lang``: what :func:`_plain` makes of a :class:`Message`
    (its detail), a :class:`Localized` text and a :class:`Saving` whose figures are plain; any other
    value orjson cannot write as it is (another dataclass…) raises :class:`_NotPlain`."""
    en = lang == "en"

    def default(value: Any) -> Any:
        kind = type(value)
        if kind is Message:
            return value.detail(lang)
        if kind is Localized:
            text = value.en if en else value.fr
            if type(text) is str:
                return text
        elif kind is Saving:
            out = value.to_dict()
            if all(type(v) in _PLAIN for v in out.values()):
                return out
        raise _NotPlain

    return default


_DEFAULTS = {lang: _json_default(lang) for lang in ("fr", "en")}


def typed_json(typed: Callable[[], Any], plain: Callable[[], Any], lang: str, option: int = 0) -> bytes:
    """``orjson.dumps(plain(), option=option)``, written from ``typed()`` instead: the same data whose
    evidence and suggestions are left typed, orjson walking their containers in C and calling back
    only for typed values (:func:`_json_default`; every dataclass is passed to it). When it meets a
    value it does not word as :func:`_plain` does, the plain data is written instead: same bytes."""
    default = _DEFAULTS.get(lang) or _json_default(lang)
    try:
        return orjson.dumps(typed(), default=default, option=option | orjson.OPT_PASSTHROUGH_DATACLASS)
    except orjson.JSONEncodeError:
        return orjson.dumps(plain(), option=option)


LATER: Any = None
"""The ``summary`` and ``detail`` of a finding with a message, to be worded from it when first read."""
_SUMMARY_SLOT: Any = Finding.__dict__["summary"]
_DETAIL_SLOT: Any = Finding.__dict__["detail"]


def _worded_when_read(slot: Any, which: str) -> property:
    """The field behind ``slot`` (``summary`` or ``detail``), worded from the finding's message in
    its language on first reading and kept (once per finding)."""

    read, write = slot.__get__, slot.__set__
    short = "s" if which == "summary" else "d"

    def get(self: Finding) -> str:
        text: str | None = read(self, Finding)
        if text is None:
            message, lang = self.message, self.lang
            assert message is not None  # __post_init__ refuses a finding with neither words nor message
            texts: dict[tuple[str, str], str] | Literal[False] | None = \
                message._texts if type(message) is Message else False
            if texts is None:  # Message.summary / detail, inline (read once per finding, by every output)
                texts = _texts_of(message)
            if texts:
                text = texts.get((lang, short))
            if text is None:
                text = message.summary(lang) if which == "summary" else message.detail(lang)
            write(self, text)
        return text

    return property(get, slot.__set__, doc=f"The finding's {which} in :attr:`Finding.lang`.")


Finding.summary = _worded_when_read(_SUMMARY_SLOT, "summary")  # type: ignore[assignment,misc]
Finding.detail = _worded_when_read(_DETAIL_SLOT, "detail")  # type: ignore[assignment,misc]


_new = object.__new__
_SET = {name: Finding.__dict__[name].__set__ for name in Finding.__slots__ if name not in ("summary", "detail")}
_SET_RULE, _SET_CATEGORY, _SET_SEVERITY, _SET_SOURCE, _SET_PATIENT, _SET_IMPLICATED, _SET_LEVEL, _SET_SUGGESTION, \
    _SET_EVIDENCE, _SET_KEY, _SET_MESSAGE, _SET_LANG, _SET_FINGERPRINT = _SET.values()
_SET_SUMMARY, _SET_DETAIL = _SUMMARY_SLOT.__set__, _DETAIL_SLOT.__set__


def finding_of(message: Message | None, lang: str, *, rule: str, category: Category, severity: Severity, source: Source,
               patient: str | None, implicated: tuple[str, ...], level: str | None = None,
               suggestion: dict[str, Any] | None = None, evidence: dict[str, Any], key: str = "") -> Finding:
    """``Finding.worded_from(message, lang, ...)`` (every rule's finding, see
    :meth:`~checker.registry.RuleCall.finding`), its fields set one by one instead of through the
    frozen dataclass's ``__init__`` (each field by name) and :meth:`Finding.__post_init__`, whose
    checks are kept: a known category, and ``implicated`` sorted (a tuple of one line is). Without a
    message (prose to check), the plain constructor."""
    if message is None or category not in CATEGORIES or type(implicated) is not tuple:
        return Finding(rule=rule, category=category, severity=severity, summary=LATER, detail=LATER, source=source,
                       patient=patient, implicated=implicated, level=level, suggestion=suggestion, evidence=evidence,
                       key=key, message=message, lang=lang)
    f = _new(Finding)
    _SET_RULE(f, rule)
    _SET_CATEGORY(f, category)
    _SET_SEVERITY(f, severity)
    _SET_SUMMARY(f, LATER)
    _SET_DETAIL(f, LATER)
    _SET_SOURCE(f, source)
    _SET_PATIENT(f, patient)
    _SET_IMPLICATED(f, implicated if len(implicated) < 2 else tuple(sorted(implicated)))
    _SET_LEVEL(f, level)
    _SET_SUGGESTION(f, suggestion)
    _SET_EVIDENCE(f, evidence)
    _SET_KEY(f, key)
    _SET_MESSAGE(f, message)
    _SET_LANG(f, lang)
    _SET_FINGERPRINT(f, "")
    return f


def _plain(data: Any, lang: str) -> Any:
    """Suggestion or evidence as JSON-ready data in ``lang``: a :class:`Saving` becomes its dict, a
    :class:`Message` its detail wording, a :class:`Localized` text the language's text; containers are
    walked (and copied only when something in them changes: a changed tuple becomes a list). Plain
    values (text, numbers, booleans, ``None``: most of the evidence) are passed over without a call.

    A container that orjson writes without a call-back, every dataclass refused, holds no typed value
    (each is a dataclass, or in a container orjson would have to call back for): it is returned as it
    is without a walk in Python (deep evidence, an interaction's entries, is most often all plain)."""
    kind = type(data)
    if kind in _PLAIN:
        return data
    if kind is dict or kind is list or kind is tuple:
        try:
            orjson.dumps(data, option=orjson.OPT_PASSTHROUGH_DATACLASS)
        except orjson.JSONEncodeError:  # its members likewise (evidence is a few levels deep)
            if kind is dict:
                return _plain_members(data, data.items(), dict, lang, _plain)
            return _plain_members(data, enumerate(data), list, lang, _plain)
        return data
    return _plain_walked(data, lang)


def _plain_walked(data: Any, lang: str) -> Any:
    """:func:`_plain` walking every container in Python (its plain path: tests/test_output_cost.py)."""
    kind = type(data)
    if kind in _PLAIN:
        return data
    if kind is dict or (kind not in _TYPED and isinstance(data, dict)):
        return _plain_members(data, data.items(), dict, lang, _plain_walked)
    if kind is list or kind is tuple or (kind not in _TYPED and isinstance(data, (list, tuple))):
        return _plain_members(data, enumerate(data), list, lang, _plain_walked)
    if isinstance(data, Saving):
        return data.to_dict()
    if isinstance(data, Message):
        return data.detail(lang)
    if isinstance(data, Localized):
        return data.en if lang == "en" else data.fr
    return data


def _plain_members(data: Any, members: Iterable[tuple[Any, Any]], copy: Callable[[Any], Any], lang: str,
                   plain: Callable[[Any, str], Any]) -> Any:
    """``data`` (a dict's items or a sequence's numbered members) with each member made plain by
    ``plain``; copied by ``copy`` only when a member changes."""
    out: Any = None
    for k, v in members:
        if type(v) in _PLAIN:
            continue
        p = plain(v, lang)
        if p is not v:
            if out is None:
                out = copy(data)
            out[k] = p
    return data if out is None else out


_PLAIN = frozenset({str, int, float, bool, type(None)})
"""Types :func:`_plain` returns as they are (subclasses take the long way)."""
_TYPED = frozenset({Saving, Message, Localized})


@dataclass(frozen=True, slots=True)
class InputError:
    """A piece of input that could not be read or used, with where it came from.

    ``code`` is what was wrong as a code with parameters (catalogue table ``input_error``);
    ``message`` is its wording in one language (English as the reader words it, the run's language
    once a report holds it: :meth:`worded`)."""

    location: str
    message: str
    resource_type: str | None = None
    code: Message | None = None

    @classmethod
    def coded(cls, location: str, code: Message, resource_type: str | None = None, lang: str = "en") -> InputError:
        return cls(location, code.text(lang, "input_error"), resource_type, code)

    def worded(self, lang: str) -> InputError:
        """This error with its message in ``lang`` (itself when it has no code)."""
        if self.code is None:
            return self
        return replace(self, message=self.code.text(lang, "input_error"))

    def to_dict(self) -> dict[str, Any]:
        return {"location": self.location, "message": self.message, "resourceType": self.resource_type}

    def order_key(self) -> tuple[Any, ...]:
        """Input order: errors located in a file (``file``, ``file:3``, ``file:3 /pointer``,
        ``file /entry/2/resource``, see :class:`~checker.model.SourceLocation`) by file (digit runs
        read as numbers), then line, then pointer; the others (a rule that failed on a record,
        ``PR003 · Patient/x``, see :func:`rule_location`) after them, by location. Ties keep their
        order (the sort is stable), whatever the language of the messages."""
        m = None if _RULE_LOCATED.match(self.location) else _LOCATED.match(self.location)
        if m is None:
            return (1, _natural(self.location))
        line = m.group("line")
        return (0, _natural(m.group("file")), int(line) if line else 0, _natural(m.group("where") or ""))


def rule_location(rule_id: str, record_ref: str | None) -> str:
    """Where a rule failed, as notation (no words, the same in every language): ``PR003 · Patient/x``,
    ``PR003 · —`` for a record without a patient."""
    return f"{rule_id} · {record_ref or '—'}"


_LOCATED = re.compile(r"^(?P<file>.+?)(?::(?P<line>\d+))?(?: (?P<where>/[^ ]*))?$")
_RULE_LOCATED = re.compile(r"^[A-Z]{2}\d{3} · ")


def _natural(text: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def in_input_order(errors: Iterable[InputError]) -> list[InputError]:
    """Input errors in one order whatever path read them (whole input, or patient shards)."""
    return sorted(errors, key=InputError.order_key)


@dataclass(slots=True)
class InputCounts:
    """Accounting of the input: ``resources == checked + ignored + rejected`` always holds."""

    files: int = 0
    resources: int = 0
    checked: int = 0
    ignored: int = 0
    rejected: int = 0

    def add(self, other: InputCounts) -> None:
        self.files += other.files
        self.resources += other.resources
        self.checked += other.checked
        self.ignored += other.ignored
        self.rejected += other.rejected

    def balanced(self) -> bool:
        return self.resources == self.checked + self.ignored + self.rejected

    def to_dict(self) -> dict[str, int]:
        return {
            "files": self.files,
            "resources": self.resources,
            "checked": self.checked,
            "ignored": self.ignored,
            "rejected": self.rejected,
        }


@dataclass(frozen=True, slots=True)
class ReferentialInfo:
    """One referential the run used, as cited in outputs."""

    id: str
    title: str
    edition: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "edition": self.edition, "sha256": self.sha256}


def add_savings(totals: dict[str, dict[str, dict[str, Fraction]]], findings: Iterable[Finding]) -> None:
    """Add the yearly savings of ``findings`` to ``totals`` (axis → key → currency → exact amount).

    Each amount is a float, an integer over a power of two (``as_integer_ratio``): a cell's amounts
    are summed as integers over their largest denominator, exactly, and added to the cell as one
    fraction (a fraction added per amount cost more than the rest of the sum). Cells are made in the
    order the findings first give them, as when each amount was added in turn."""
    sums: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    for f in findings:
        saving = f.saving
        if saving is None:
            continue
        ratio = float(saving.yearly).as_integer_ratio()
        cur = saving.currency
        subst = str(f.evidence.get("substance", "")) or "?"
        for cell_key in (("total", "", cur), ("by_rule", f.rule, cur), ("by_substance", subst, cur)):
            ratios = sums.get(cell_key)
            if ratios is None:
                sums[cell_key] = [ratio]
            else:
                ratios.append(ratio)
    for (axis, key, cur), ratios in sums.items():
        cell = totals.setdefault(axis, {}).setdefault(key, {})
        denominator = max(d for _, d in ratios)  # every denominator a power of two: each divides it
        amount = Fraction(sum(n * (denominator // d) for n, d in ratios), denominator)
        cell[cur] = cell.get(cur, Fraction(0)) + amount


def savings_dict(totals: dict[str, dict[str, dict[str, Fraction]]]) -> dict[str, Any]:
    """The report's savings section from exact totals (see :func:`add_savings`)."""
    def rnd(d: dict[str, Fraction]) -> dict[str, float]:
        return {k: round(float(v), 2) for k, v in d.items()}

    return {
        "period": "year",
        "total": rnd(totals.get("total", {}).get("", {})),
        "by_rule": {k: rnd(v) for k, v in sorted(totals.get("by_rule", {}).items())},
        "by_substance": {k: rnd(v) for k, v in sorted(totals.get("by_substance", {}).items())},
    }


def savings_table(findings: Iterable[Finding]) -> dict[str, Any]:
    """Potential savings of ``findings`` totalled by currency, by rule and by substance."""
    totals: dict[str, dict[str, dict[str, Fraction]]] = {}
    add_savings(totals, findings)
    return savings_dict(totals)


@dataclass(slots=True)
class Report:
    """The result of a check: findings, input errors and accounting. Pure data."""

    checker_name: str
    checker_version: str
    referentials: tuple[ReferentialInfo, ...]
    as_of: str  # ISO date the run treated as "today"
    jurisdiction: str
    inputs: InputCounts
    findings: list[Finding]
    errors: list[InputError]
    lang: str = "fr"
    resource_urls: dict[str, str] = field(default_factory=dict)
    """``Type/id`` -> the Bundle ``fullUrl`` the input gave that resource, so that outputs can point
    where the input lives (FHIR outputs use it for ``implicated`` and evidence references)."""

    def worded(self, lang: str) -> Report:
        """The same report with every finding worded in ``lang`` (rendering after the fact)."""
        if lang == self.lang:
            return self
        return replace(self, findings=[f.worded(lang) for f in self.findings],
                       errors=[e.worded(lang) for e in self.errors], lang=lang)

    def sorted_findings(self) -> list[Finding]:
        """Findings by patient, most severe first, then rule and fingerprint (deterministic)."""
        return sorted(
            self.findings,
            key=lambda f: (f.patient or "~", -f.severity.rank, f.rule, f.implicated, f.fingerprint),
        )

    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def savings(self) -> dict[str, Any]:
        """Potential savings totalled by currency, by rule and by substance (exact sums, rounded
        at the end: the totals do not depend on the order of the findings)."""
        return savings_table(self.findings)

    def to_json(self, option: int = 0) -> bytes:
        """``orjson.dumps(self.to_dict(), option=option)``, the same bytes for less work (see
        :func:`typed_json`; findings in several languages take the plain way)."""
        langs = {f.lang for f in self.findings}
        if len(langs) > 1:
            return orjson.dumps(self.to_dict(), option=option)
        return typed_json(lambda: self._head([f._typed_dict() for f in self.sorted_findings()]), self.to_dict,
                          langs.pop() if langs else self.lang, option)

    def to_dict(self) -> dict[str, Any]:
        return self._head([f.to_dict() for f in self.sorted_findings()])

    def _head(self, findings: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "checker": {
                "name": self.checker_name,
                "version": self.checker_version,
                "referentials": [r.to_dict() for r in self.referentials],
                "jurisdiction": self.jurisdiction,
            },
            "as_of": self.as_of,
            "inputs": self.inputs.to_dict(),
            "findings": findings,
            "errors": [e.to_dict() for e in self.errors],
            "savings": self.savings(),
        }
