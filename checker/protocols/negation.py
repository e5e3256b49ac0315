"""Simple negation in free text, for the protocols' ``<condition>`` and ``<allergy>`` patterns.

« Lombalgie commune : pas de fièvre, pas d'antécédent de cancer » names fever and cancer only to
deny them; a red-flag pattern must not take them as present. This is a deliberately small,
NegEx-like reading, not a parser:

* The text is cut into **clauses** at punctuation (``, ; : . ! ? ( ) [ ]``, line breaks; a comma
  or full stop between digits, as in « 39,4 », does not cut) and before the words « mais »,
  « cependant », « toutefois », « sauf », « hormis », « avec », « et », « ou », « puis »,
  « chez », "but", "however", "except", "with", "and", "or", "then": a cue does not reach over
  them (« sans amélioration et fièvre à 39 » affirms the fever).
* In a clause, a pattern match is **negated** when a negation cue comes before it — « pas de »,
  « pas d' », « sans », « absence de », « aucun(e) », « ni », "no", "without", "denies" /
  "denied" / "deny" at most five words before it — or when the word right after the matched word is « négatif(s) » /
  « négative(s) » / "negative" (« recherche de cancer négative »).
* A text where the pattern matches once affirmed still matches (« pas de fièvre, antécédent de
  cancer » affirms cancer).

Cues and clauses are read on folded text (:func:`checker.text.fold`), like the patterns.
"""

from __future__ import annotations

import re
from functools import lru_cache

from checker.text import fold

# cut before folding: punctuation that ends a clause (not a decimal comma or point)
_CLAUSE_PUNCT = re.compile(r"[;:!?()\[\]\n\r]|,(?!\d)|\.(?!\d)")
# cut after folding: words that open an affirmed clause
_CLAUSE_WORDS = re.compile(r"\b(?:mais|cependant|toutefois|sauf|hormis|avec|et|ou|puis|chez|but|however|except|"
                           r"with|and|or|then)\b")
_WINDOW = 5
"""Words at most between a cue and what it denies (NegEx-style scope): « pas d'amélioration depuis
quatre semaines, fièvre » does not deny the fever."""
_PRE_CUE = re.compile(r"\b(?:pas de|pas d|sans|absence de|absence d|aucune?|ni|no|without|denies|denied|deny)\b")
_POST_CUE = re.compile(r"\w*\s+(?:negati(?:f|fs|ve|ves))\b")


@lru_cache(maxsize=16384)
def clauses(text: str) -> tuple[str, ...]:
    """The folded clauses of ``text`` (see module docstring), empty ones dropped."""
    out: list[str] = []
    for part in _CLAUSE_PUNCT.split(text):
        for clause in _CLAUSE_WORDS.split(fold(part)):
            clause = clause.strip()
            if clause:
                out.append(clause)
    return tuple(out)


def _negated(clause: str, start: int, end: int) -> bool:
    cues = list(_PRE_CUE.finditer(clause, 0, start))
    if cues and len(clause[cues[-1].end():start].split()) <= _WINDOW:
        return True
    return _POST_CUE.match(clause, end) is not None


def affirmed(pattern: re.Pattern[str], text: str) -> bool:
    """True when ``pattern`` matches ``text`` at least once outside a negation."""
    folded = fold(text)
    if not pattern.search(folded):
        return False
    seen = False
    for clause in clauses(text):
        for m in pattern.finditer(clause):
            seen = True
            if not _negated(clause, m.start(), m.end()):
                return True
    # a match that spans a clause boundary is not read for negation: it stands
    return not seen
