"""Negation, hypotheticals and family history in free text: the one reading of clinical wording.

« Lombalgie commune : pas de fièvre, pas d'antécédent de cancer » names fever and cancer only to
deny them; « antécédents familiaux d'ulcère » is a relative's disease; « suspicion de grossesse »
is not a pregnancy. This is a deliberately small, NegEx-like reading, not a parser:

* The text is cut into **clauses** at punctuation (``, ; : . ! ? ( ) [ ]``, line breaks; a comma
  or full stop between digits, as in « 39,4 », does not cut) and before the words « mais »,
  « cependant », « toutefois », « sauf », « hormis », « avec », « et », « ou », « puis »,
  « chez », « depuis », « pendant », « durant », « après », « car », « parce que », « en raison
  de », « à cause de », "but", "however", "except", "with", "and", "or", "then", "since",
  "during", "after", "because", "due to": a cue does not reach over them (« sans amélioration et
  fièvre à 39 » affirms the fever; « ne prend plus d'AINS depuis son ulcère » affirms the ulcer).
* In a clause, a match is **negated** when a negation cue comes at most five words before it —
  « pas de », « pas d' » (so « pas d'antécédent de »), « sans », « absence de », « aucun(e) »,
  « ni », « non », « jamais », "no", "not", "never", "no longer", "without", "denies" / "denied" /
  "deny", "negative for"; or « ne/n' … pas / plus / jamais » around one verb, "isn't", "wasn't",
  "hasn't" and the like, at most one word before the match (« n'est pas enceinte », « n'a jamais
  été enceinte »; « ne fume plus, enceinte » affirms the pregnancy) — or when
  one of the three words after it is « négatif(s) » / « négative(s) » / "negative", "ruled out",
  "excluded", « exclu(e)(s) », « écarté(e)(s) » (« recherche de cancer négative », "Pregnancy ruled
  out"), or when the next clause is only « non », "no", « négatif », « absent(e) », « aucun(e) »,
  possibly after « test », « bilan », « recherche », « dépistage » (« Ulcère gastrique : non »,
  « Allergie aux AINS : test négatif »).
* A match is **hypothetical** after « suspicion de », « suspecté(e) », « éventuel(le) »,
  « à éliminer », « si », "suspected", "possible", "if", "rule out"; right after « désir de »,
  « projet de », « souhait de », "wish for", "trying to conceive"; or when one of the three words after it
  doubts it: « improbable », « peu probable », « à confirmer », « douteux », « non confirmé »,
  "unlikely", "doubtful", "to be confirmed", "not confirmed"; it is **someone else's**
  after « antécédents familiaux de », « familial(e) », "family history of", or when followed by
  « chez sa mère / son père … » / "in his mother …". Neither says anything about the patient.
* A text where the pattern matches once affirmed is affirmed (« pas de fièvre, antécédent de
  cancer » affirms cancer); a text where it only matches negated states the opposite.

Cues and clauses are read on folded text (:func:`checker.text.fold`), like the patterns.
"""

from __future__ import annotations

import re
from functools import lru_cache

from checker.memo import holds_request_words
from checker.text import fold

# cut before folding: punctuation that ends a clause (not a decimal comma or point)
_CLAUSE_PUNCT = re.compile(r"[;:!?()\[\]\n\r]|,(?!\d)|\.(?!\d)")
# cut after folding: words that open an affirmed clause
_CLAUSE_WORDS = re.compile(r"\b(?:mais|cependant|toutefois|sauf|hormis|avec|et|ou|puis|chez|depuis|pendant|durant|"
                           r"apres|car|parce que|en raison d[eu]?|a cause d[eu]?|but|however|except|with|and|or|then|"
                           r"since|during|after|because|due to)\b")
_WINDOW = 5
"""Words at most between a cue and what it denies (NegEx-style scope): « pas d'amélioration depuis
quatre semaines, fièvre » does not deny the fever."""
_PRE_CUE = re.compile(r"\b(?:pas de|pas d|sans|absence (?:(?:totale|complete) )?d[eu]?|aucune?|ni|non|no|not|"
                      r"without|denies|denied|deny|negative for|jamais|never|no longer|absence of|free of|nie|nient)\b")
_VERB_CUE = re.compile(r"\b(?:ne?\s+\w+(?:\s+\w+)?\s+(?:pas|plus|jamais|point)|"
                       r"(?:is|was|are|were|has|had|have|does|do|did)n\s+t)\b")
"""« n'est pas », « n'est actuellement pas », « n'a pas eu de », "isn't", "hasn't had", "doesn't have":
the verb is denied, and with it what follows closely (at most three words between: « n'a pas
présenté d'ulcère »), not a later object: « ne fume plus depuis … enceinte », "doesn't smoke since
her pregnancy" are cut by their clause word."""
_VERB_WINDOW = 3
_POST_CUE = re.compile(r"\w*(?:\s+\w+){0,2}?\s+(?:negati(?:f|fs|ve|ves)|ruled out|excluded|exclue?s?|ecartee?s?|"
                       r"niee?s?|denied|absente?s?|non retrouvee?s?|not found)\b")
_HYPOTHETICAL = re.compile(r"\b(?:suspicion de|suspicion d|suspecte?e?s?|suspected|eventuel(?:le)?s?|a eliminer|"
                           r"possible|rule out|to rule out|hypothese de|hypothese d|hypothesis of)\b")
_HEDGE = re.compile(r"\b(?:probable|probably|evoque|evoquee?s?|evoquant|evocat(?:eur|rice|eurs|rices) d[eu]?|"
                    r"suggestive of)\b")
_POST_HEDGE = re.compile(r"\w*(?:\s+\w+){0,2}?\s+(?:a evoquer|to consider|to be considered)\b")
"""A probability or an evocation (« tableau évocateur d'ulcère », "probable pregnancy"): read as a
hypothesis where the patient's state is read (``state``); a protocol's reason may name its
indication so (« fracture probable »)."""
_WORKUP = re.compile(r"\b(?:bilan de|bilan d|work ?up for|work ?up of|depistage de|depistage d|depistage du|"
                     r"screening for|screening of|risque(?: \w+)? d[eu]?|risk of|risk for|at risk of|prevention de|"
                     r"prevention d|prevention du|prevention of|prophylaxie de|prophylaxie d|prophylaxis of|"
                     r"prophylaxis for)\b")
"""A work-up, a screening, a risk or a prevention of what follows (« bilan de grossesse en cours »,
"risk of peptic ulcer", « prévention de l'ulcère »): the patient does not have it yet, unless the
clause denies it (« dépistage de X négatif » states its absence). A work-up or a screening is a
question the record asks (a suspicion); a risk or a prevention is not even that."""
_ASKING = re.compile(r"\b(?:bilan|work ?up|depistage|screening)\b")
_PAST = re.compile(r"\b(?:atcd de|atcd d|antecedents? de|antecedents? d|antecedents? personnels? de|"
                   r"antecedents? personnels? d|history of|h o|previous|prior|past|former|ancienne?s?|precedente?s?)\b")
_POST_PAST = re.compile(r"\w*(?:\s+\w+){0,2}?\s+(?:terminee?s?|ended|over|resolue?s?|resolved|guerie?s?|healed|"
                        r"anterieure?s?|precedente?s?|passee?s?(?!\s+inapercue)|previous|corrigee?s?|corrected)\b")
_NOT_OVER = re.compile(r"\b(?:non|pas|not|never|jamais|yet|partiellement|partially|incompletement|incompletely|"
                       r"terme|term)\b")
"""Words that leave the episode going (« hypokaliémie non corrigée », "not yet resolved", « partiellement
corrigée », « grossesse prolongée, terme passé »; « passée inaperçue » is unnoticed, not over). « Ancienne »
after the noun is long-standing (« hypokaliémie ancienne »), before it former."""
_PAST_WINDOW = 1
"""Words at most between a past cue and the notion (« ATCD d'une grossesse », "previous ectopic
pregnancy"): « Previous admission for falls now pregnant » is a current pregnancy."""
"""Wording of an episode that is over (« ATCD de grossesse », « grossesse terminée en 2019 »,
"previous pregnancy", « hypokaliémie corrigée »): a history, not the patient's state on the day.
Read so only for notions judged on the day that come and go (``current``): a history of ulcer
stays a history."""
_CONDITIONAL = re.compile(r"\b(?:si|if|en cas de|en cas d|in case of|in the event of)\b")
"""An instruction for a case that may come (« arrêt du valproate si grossesse », "stop if pregnant"):
says nothing of the patient, not even a suspicion."""
_WISH = re.compile(r"\b(?:desir de|desir d|projet de|projet d|souhait de|souhait d|wish for|wishes for|desire for|"
                   r"trying to conceive|plans? for a|planning|planning for|plans? to become|wants? to become|"
                   r"wish(?:es)? to become|souhaite|souhaiterait|voudrait)\b")
"""A wish or plan for what follows at once (« désir de grossesse », "planning a pregnancy"): not yet
the patient's state. "Planned" is not one: « planned pregnancy at 12 weeks » is a pregnancy."""
_DOUBT_WORDS = (r"improbable|peu probable|unlikely|a confirmer|douteu(?:x|se|ses)|doubtful|to be confirmed|"
                r"non confirmee?s?|not confirmed|unconfirmed|a eliminer|to be ruled out|possible|probable|"
                r"suspecte?e?s?|suspected")
_TODO_WORDS = r"a faire|a realiser|a prevoir|to do|pending|en attente|prevue?s?|envisagee?s?|planned"
_POST_DOUBT = re.compile(rf"\w*(?:(?:\s+\w+){{0,2}}?\s+(?:{_DOUBT_WORDS})|\s+(?:{_TODO_WORDS}))\b")
"""After what it qualifies: the writer doubts it (« grossesse peu probable », "pregnancy to be ruled
out", up to two words after the term) or still has to check or plan it (« test de grossesse à faire »,
"pregnancy test pending", « grossesse prévue en 2027 », right after it): a hypothesis, neither
affirmed nor denied. « Grossesse désirée » (a wanted pregnancy) stays a pregnancy."""
_ANSWER_DOUBT = re.compile(rf"\s*(?:{_DOUBT_WORDS}|{_TODO_WORDS})")
"""A clause that is only a doubt answers the clause before it (« Grossesse : à confirmer »,
« Grossesse (peu probable) », "Pregnancy? to be confirmed")."""
_FAMILY = re.compile(r"\b(?:antecedents? familia(?:l|ux|le|les) de|antecedents? familia(?:l|ux|le|les) d|"
                     r"familia(?:l|ux|le|les)|family history of|family history)\b")
_ANSWER_NO = re.compile(r"(?:(?:test|tests|bilan|recherche|depistage)\s+)?"
                        r"(?:non|no|negati(?:f|fs|ve|ves)|neg|absente?|aucune?|none|niee?s?|denied|jamais|never)|"
                        r"negative tests?")
"""A clause that is only one of these answers the clause before it (« Ulcère gastrique : non »,
« Allergie aux AINS : test négatif »)."""
_RELATIVE = (r"(?:mere|pere|frere|soeur|soeurs|freres|fils|fille|grand mere|grand pere|oncle|tante|cousine?|"
             r"parents?|mother|father|brother|sister|son|daughter|grandmother|grandfather|uncle|aunt|cousin)")
_RELATIVE_AFTER = re.compile(rf"\w*(?:\s+\w+){{0,3}}?\s+(?:chez|in)\s+(?:sa|son|la|le|l|ses|his|her|the|a)?\s*{_RELATIVE}\b")
_RELATIVE_SUBJECT = re.compile(rf"\b(?:(?<!jeune )(?=fille\b)|(?!fille\b)){_RELATIVE}\s+(?:a eu|a fait|a presente|a|avait|had|has had|has|suffered from|"
                               rf"suffers from|allergique|allergic|atteinte?|souffre|souffrait)\b")
"""A relative as the subject (« sa mère a eu un infarctus », « mère allergique à la pénicilline »,
"mother had peptic ulcer"); « jeune fille » is the patient (a young woman), not a daughter."""
_FAMILY_HEADER = re.compile(rf"(?:(?:antecedents?|atcds?) familia(?:l|ux|le|les)|familia(?:l|ux|le|les)|"
                            rf"family history|family hx|fh|histoire familiale|"
                            rf"(?:(?:sa|son|ses|his|her|the)\s+{_RELATIVE}|(?!son\s){_RELATIVE})(?:\s+\w+)?)")
"""A clause that only heads what follows with a colon (« Antécédents familiaux : … », « Père : … »,
"FH: …"): what it lists, up to the end of the sentence or the next other header (« Antécédents
personnels : … »), is a relative's. « Son » before a noun is the French possessive (« Son diagnostic : »)."""
_SENTENCE_END = frozenset(".;!")
_ANSWER_YES = re.compile(r"\s*(?:oui|yes|positi(?:f|ve)|confirmee?)")


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


def _cue_before(cue: re.Pattern[str], clause: str, start: int, window: int = _WINDOW) -> bool:
    cues = list(cue.finditer(clause, 0, start))
    return bool(cues) and len(clause[cues[-1].end():start].split()) <= window


def _negated(clause: str, start: int, end: int) -> bool:
    return (_cue_before(_PRE_CUE, clause, start) or _cue_before(_VERB_CUE, clause, start, _VERB_WINDOW)
            or _POST_CUE.match(clause, end) is not None)


_CLAUSE_PUNCT_KEPT = re.compile(r"([;:!?()\[\]\n\r]|,(?!\d)|\.(?!\d))")


@lru_cache(maxsize=16384)
def _read_clauses(text: str) -> tuple[tuple[str, bool, bool], ...]:
    """The clauses of :func:`clauses`, each with two readings of the punctuation around it: under a
    family header (« Antécédents familiaux : diabète, infarctus », up to the end of the sentence or
    line), and questioned (a « ? » right after it, or opening the text or sentence: « Grossesse ? »)."""
    pieces = _CLAUSE_PUNCT_KEPT.split(text)  # text, separator, text, separator, …
    out: list[tuple[str, bool, bool]] = []
    family = False
    listed = 0  # clauses read since the family header
    for k in range(0, len(pieces), 2):
        before = pieces[k - 1] if k else ""
        after = pieces[k + 1] if k + 1 < len(pieces) else ""
        if before in _SENTENCE_END or (before in ("\n", "\r") and listed):
            family = False
        subs = [c.strip() for c in _CLAUSE_WORDS.split(fold(pieces[k]))]
        subs = [c for c in subs if c]
        opens_question = before == "?" and (k < 2 or not pieces[k - 2].strip())
        for n, clause in enumerate(subs):
            last = n == len(subs) - 1
            questioned = (last and after == "?") or (n == 0 and opens_question)
            if last and after == ":":
                if _FAMILY_HEADER.fullmatch(clause):
                    family, listed = True, 0
                    out.append((clause, False, False))
                    continue
                family = False  # another header (« Antécédents personnels : ») ends the family's list
            out.append((clause, family, questioned))
            listed += family
    return tuple(out)


holds_request_words(clauses.cache_clear)  # both keyed by a record's wording: the patient's words
holds_request_words(_read_clauses.cache_clear)


def polarity(pattern: re.Pattern[str], text: str, *, suspected: bool = False, current: bool = False,
             state: bool = False) -> bool | None:
    """What ``text`` states about ``pattern``: ``True`` when it is affirmed at least once, ``False``
    when it is only denied, ``None`` when it is not mentioned, or only as a hypothesis or a
    relative's disease. With ``suspected``, a hypothesis about the patient (« suspicion d'allergie à
    la pénicilline ») counts as affirmed: where a suspicion calls for the same caution (allergies).
    With ``current``, an episode written as over (« ATCD de grossesse », "previous pregnancy") is
    not the patient's state on the day: for notions that come and go, judged on the day. With
    ``state`` (reading the patient's state, not a request's reason), a question (« Grossesse ? »), a
    probability, a work-up, a screening, a risk or a prevention of it is not the state: a request's
    reason may name its indication so (« fracture ? », « risque d'effets secondaires »)."""
    folded = fold(text)
    if not pattern.search(folded):
        return None
    seen = denied = False
    parts = _read_clauses(text)
    for i, (clause, relative, questioned) in enumerate(parts):
        nxt = parts[i + 1][0] if i + 1 < len(parts) else None
        answer_after = nxt is not None and _ANSWER_NO.fullmatch(nxt) is not None
        yes_after = nxt is not None and _ANSWER_YES.fullmatch(nxt) is not None
        doubt_after = nxt is not None and _ANSWER_DOUBT.fullmatch(nxt) is not None
        for m in pattern.finditer(clause):
            seen = True
            if (relative or _cue_before(_FAMILY, clause, m.start()) or _cue_before(_RELATIVE_SUBJECT, clause, m.start())
                    or _cue_before(_CONDITIONAL, clause, m.start())):
                continue
            if state and _cue_before(_WORKUP, clause, m.start()) and not _recurrence_before(clause, m.start()):
                if answer_after or _negated(clause, m.start(), m.end()):
                    denied = True  # « dépistage de … négatif », « pas de risque de … »
                elif suspected and _ASKING.search(clause, 0, m.start()):
                    return True  # a work-up or a screening under way: the record asks the question
                continue
            doubted = (doubt_after or (state and questioned and not answer_after and not yes_after)
                       or _POST_DOUBT.match(clause, m.end()) is not None)
            if doubted and suspected:
                return True  # « grossesse à éliminer », "pregnancy to be ruled out": a suspicion, not a denial
            hedged = state and (_cue_before(_HEDGE, clause, m.start()) or _POST_HEDGE.match(clause, m.end()) is not None)
            if (doubted or hedged or _cue_before(_HYPOTHETICAL, clause, m.start())
                    or _cue_before(_WISH, clause, m.start(), 1)) and not suspected:
                continue
            if answer_after or _negated(clause, m.start(), m.end()):
                denied = True
                continue
            if _relative_follows(folded, m.group(0)):
                continue
            if current and (_cue_before(_PAST, clause, m.start(), _PAST_WINDOW) or _over_after(clause, m.end())
                            or _recurrence_before(clause, m.start())):
                continue  # an episode that is over: a history, not the state on the day
            return True
    if denied:
        return False
    # a match that spans a clause boundary is not read for negation: it stands
    return None if seen else True


_RECURRENCE = re.compile(r"\b(?:recidives?|rechutes?|recurrence|recurrent|relapse)\b")
"""A recurrence to prevent, or its risk (« prévention de la récidive d'ulcère », "risk of recurrent
ulcer"): the notion happened, a history; over by now for a notion judged on the day."""


def _recurrence_before(clause: str, start: int) -> bool:
    """A recurrence word governs the notion: after the last work-up, risk or prevention cue before it."""
    cues = list(_WORKUP.finditer(clause, 0, start))
    return (bool(cues) and len(clause[cues[-1].end():start].split()) <= _WINDOW
            and _RECURRENCE.search(clause, cues[-1].end(), start) is not None)


def _over_after(clause: str, end: int) -> bool:
    """The words after the notion say its episode is over (« corrigée », « terminée »), not « non corrigée »."""
    m = _POST_PAST.match(clause, end)
    return m is not None and _NOT_OVER.search(m.group(0)) is None


def _relative_follows(folded: str, matched: str) -> bool:
    """« ulcère chez sa mère », "ulcer in his father": the matched words are followed by a relative."""
    for m in re.finditer(re.escape(matched), folded):
        if _RELATIVE_AFTER.match(folded, m.end()):
            return True
    return False


def affirmed(pattern: re.Pattern[str], text: str) -> bool:
    """True when ``pattern`` matches ``text`` at least once outside a negation, a hypothesis or a
    relative's history."""
    return polarity(pattern, text) is True
