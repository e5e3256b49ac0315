"""Does a coded or worded concept name a given clinical notion? The one concept matcher.

A matcher is any object with ``codes`` (each with a system alias such as ``ICD10``, a ``code`` and
``prefix``) and ``patterns`` (regular expressions on folded text): the protocols' ``Matcher`` and the
facts tables' :class:`ConceptSet` both are. Codes are never read as negated; texts are read through
:mod:`checker.facts.negation`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from checker.facts.negation import affirmed, polarity
from checker.model import Concept
from checker.text import fold


class CodeRef(Protocol):
    @property
    def system(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def prefix(self) -> bool: ...


class ConceptMatcher(Protocol):
    @property
    def codes(self) -> Sequence[CodeRef]: ...
    @property
    def patterns(self) -> Sequence[re.Pattern[str]]: ...


@dataclass(frozen=True, slots=True)
class Code:
    """A code to look for: system alias (ICD10, SNOMED, LOINC …), the code, exact or prefix."""

    system: str
    code: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class ConceptSet:
    """A clinical notion as codes and text patterns (read from the facts tables)."""

    codes: tuple[Code, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    episodic: bool = False
    """A state that comes and goes (a pregnancy, a low potassium): an episode written as over
    (« ATCD de grossesse ») is not the state on a later day."""


_OIDS = {
    "CCAM": {"1.2.250.1.213.2.5"},
    "CPT": {"2.16.840.1.113883.6.12"},
    "LOINC": {"2.16.840.1.113883.6.1"},
    "SNOMED": {"2.16.840.1.113883.6.96"},
    "ICD10": {"2.16.840.1.113883.6.3", "2.16.840.1.113883.6.90"},
    "ATC": {"2.16.840.1.113883.6.73"},
    "NABM": set(),
    "IPS-ABSENT": {"2.16.840.1.113883.5.1150.1"},
}
_TOKENS = {
    "CCAM": ("ccam",),
    "CPT": ("cpt",),
    "LOINC": ("loinc",),
    "SNOMED": ("snomed",),
    "ICD10": ("icd10", "cim10"),
    "ATC": ("atc",),
    "NABM": ("nabm",),
    "IPS-ABSENT": ("absentunknownuvips",),  # http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips
}


@functools.lru_cache(maxsize=4096)
def system_is(alias: str, system: str) -> bool:
    """True when the FHIR ``system`` URI designates the code system ``alias`` (CCAM, ICD10 …)."""
    s = system.strip().lower()
    if not s:
        return False
    if s.startswith("urn:oid:"):
        return s[8:] in _OIDS.get(alias, set())
    squashed = re.sub(r"[^a-z0-9]", "", s)
    if alias == "ATC":
        return "atc" in re.split(r"[^a-z0-9]+", s) or "whocc" in squashed
    return any(tok in squashed for tok in _TOKENS.get(alias, ()))


def _norm_code(alias: str, code: str) -> str:
    c = code.strip().upper()
    if alias in ("ICD10", "ATC", "CCAM"):
        c = c.replace(".", "").replace(" ", "")
    return c


def code_matches(spec: CodeRef, system: str, code: str) -> bool:
    if not system_is(spec.system, system):
        return False
    want, have = _norm_code(spec.system, spec.code), _norm_code(spec.system, code)
    return have.startswith(want) if spec.prefix else have == want


def _code_hit(matcher: ConceptMatcher, concept: Concept) -> str | None:
    for coding in concept.codings:
        for spec in matcher.codes:
            if code_matches(spec, coding.system, coding.code):
                return f"{spec.system} {coding.code}" + (f" « {coding.display} »" if coding.display else "")
    return None


def concept_matches(matcher: ConceptMatcher, concept: Concept, *, negation: bool = False) -> str | None:
    """What matched (a code or a text) when ``concept`` matches, else ``None``.

    With ``negation``, a pattern found only in a negated, hypothetical or family-history clause of a
    text (« pas de fièvre », "no history of cancer") does not match."""
    hit = _code_hit(matcher, concept)
    if hit:
        return hit
    if matcher.patterns:
        for text in concept.all_texts():
            folded = fold(text)
            for pat in matcher.patterns:
                if affirmed(pat, text) if negation else pat.search(folded):
                    return f"« {text} »"
    return None


def concept_polarity(matcher: ConceptMatcher, concept: Concept, *, suspected: bool = False, current: bool = False
                     ) -> tuple[bool | None, str | None]:
    """``(True, what)`` when the concept affirms the notion (a code, or an affirmed text), ``(False,
    what)`` when its text only denies it, ``(None, None)`` when it does not speak of it. With
    ``suspected``, a hypothesis about the patient (a suspicion, a doubt, a wish) counts as affirmed;
    with ``current``, text of an episode that is over does not (see :func:`~checker.facts.negation.polarity`)."""
    hit = _code_hit(matcher, concept)
    if hit:
        return True, hit
    denied: str | None = None
    for text in concept.all_texts():
        for pat in matcher.patterns:
            p = polarity(pat, text, suspected=suspected, current=current, state=True)
            if p is True:
                return True, f"« {text} »"
            if p is False:
                denied = denied or f"« {text} »"
    return (False, denied) if denied else (None, None)
