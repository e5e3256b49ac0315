"""Text normalisation shared by every matcher (drug names, thesaurus entries, protocol patterns)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from checker.memo import holds_request_words

_NON_WORD = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Lower case, accents removed, ligatures expanded, every non-alphanumeric run → one space.

    >>> fold("ATORVASTATINE CALCIQUE TRIHYDRATÉE")
    'atorvastatine calcique trihydratee'
    >>> fold("Œstradiol / Lévonorgestrel")
    'oestradiol levonorgestrel'
    """
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", ascii_text.lower()).strip()


@lru_cache(maxsize=65536)
def fold_keeping_punctuation(text: str) -> str:
    """Lower case, accents removed, runs of spaces collapsed, punctuation kept (for matching only).

    >>> fold_keeping_punctuation("  Comprimé   pelliculé sécable, 5 mg/ml ")
    'comprime pellicule secable, 5 mg/ml'
    """
    t = unicodedata.normalize("NFKD", text or "")
    t = "".join(c for c in t if not unicodedata.combining(c)).lower()
    return re.sub(r"\s+", " ", t).strip()


# both keyed by every text read, a record's wording too (an allergy, a diagnosis): not kept past a check
holds_request_words(fold.cache_clear)
holds_request_words(fold_keeping_punctuation.cache_clear)


def substance_key(name: str) -> str:
    """The key under which a substance (or class) name is compared across referentials.

    Only accent/case/punctuation folding: salt and form folding to the active moiety is the
    drug referential's job (:mod:`checker.drugs`), which maps every name it knows to such a key.
    """
    return fold(name)
