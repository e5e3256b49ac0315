"""What a finding proposes, as one sentence naming the drugs (never a resource id or an action code).

Shared by the text, HTML and CDS renderers: :func:`advice` words a finding's ``suggestion`` from the
catalogue (``action`` table) and names the drugs from the prescription labels when the caller has
them, else from the finding's evidence (substances) or the product the suggestion replaces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from checker.formats.catalogue import catalogue, money, msg

_NOT_ACTIONS = ("switch", "alternative", "saving", "saving_year", "and")


def drugs_named(f: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> list[str]:
    """The drugs a finding is about, as a pharmacist would name them (prescription labels first)."""
    labels = labels or {}
    named = [labels[r] for r in f.get("implicated") or () if labels.get(r)]
    if named:
        return list(dict.fromkeys(named))
    ev = f.get("evidence") or {}
    for key in ("lines", "substances"):
        if isinstance(ev.get(key), list) and ev[key]:
            return list(dict.fromkeys(str(x) for x in ev[key]))
    for entry in ev.get("entries") or ():
        via = entry.get("via") if isinstance(entry, dict) else None
        if isinstance(via, list) and via:
            return list(dict.fromkeys(str(v[0]) for v in via if v))
    if isinstance(ev.get("criteria"), list):
        found = [str(c["substance"]) for c in ev["criteria"] if isinstance(c, dict) and c.get("substance")]
        if found:
            return list(dict.fromkeys(found))
    if ev.get("substance"):
        return [str(ev["substance"])]
    return []


def _product(d: Mapping[str, Any]) -> str:
    """A product's name without its packaging (``TAHOR 20 mg, comprimé pelliculé``)."""
    return str(d.get("label") or "").split(" — ")[0].strip()


def _join(items: list[str], lang: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + msg(lang, "action.and") + items[-1]


def advice(f: Mapping[str, Any], lang: str, labels: Mapping[str, str] | None = None) -> str:
    """One sentence: what to do, naming the drugs and the replacement, with the money saved."""
    sugg = f.get("suggestion") or {}
    if not sugg:
        return ""
    actions = catalogue(lang)["action"]
    drugs = _join(drugs_named(f, labels), lang)
    parts: list[str] = []
    replace: Mapping[str, Any] = sugg["replace"] if isinstance(sugg.get("replace"), dict) else {}
    target: Mapping[str, Any] = sugg["with"] if isinstance(sugg.get("with"), dict) else {}
    prescribed = _product(replace) or drugs or "—"
    to = _product(target) or " ".join(str(target[k]) for k in ("dci", "strength", "form") if target.get(k)) \
        or str(target.get("class") or "")
    if to and to == prescribed:  # same product, another pack: name the packs
        prescribed, to = str(replace.get("label")), str(target.get("label"))
    if to:
        parts.append(msg(lang, "action.switch", drugs=prescribed, target=to))
    action = sugg.get("action")
    if isinstance(action, str) and action in actions and action not in _NOT_ACTIONS:
        parts.append(msg(lang, f"action.{action}", drugs=prescribed if replace else (drugs or "—")))
    if sugg.get("alternative"):
        parts.append(msg(lang, "action.alternative", text=str(sugg["alternative"])))
    if sugg.get("text") and not parts:
        parts.append(str(sugg["text"]))
    saving: Mapping[str, Any] = sugg["saving"] if isinstance(sugg.get("saving"), dict) else {}
    if saving.get("amount") is not None:
        cur = str(saving.get("currency", ""))
        if saving.get("per_year_basis") == "past":  # a past prescription: what it would have saved
            parts.append(msg(lang, "action.saving_past", amount=money(float(saving["amount"]), cur, lang)))
        elif saving.get("per_year") is not None:
            parts.append(msg(lang, "action.saving_year", amount=money(float(saving["per_year"]), cur, lang)))
        else:
            parts.append(msg(lang, "action.saving", amount=money(float(saving["amount"]), cur, lang)))
    return (" ; " if lang == "fr" else "; ").join(parts)


def short_cite(label: str, edition: str = "", limit: int = 90) -> str:
    """A source's publisher, title and year, short enough for a card's ``source.label``: without
    parentheses, subtitles (after " — "), second references (after ";"), clipped at a word; the
    long reference stays behind the source URL and in the card detail."""
    text = label
    while True:
        shorter = re.sub(r"\s*\([^()]*\)", "", text)
        if shorter == text:
            break
        text = shorter
    text = text.split(";")[0].strip()
    text = re.sub(r"\s+—\s+[^«»]*?(?=\s*»|$)", "", text)  # a title's subtitle
    text = re.sub(r",\s*(19|20)\d\d$", "", text).strip().rstrip(",")
    if len(text) > limit:
        text = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    if text.count("«") > text.count("»"):
        text += " »"
    year = re.search(r"\b(19|20)\d\d\b", edition or "") or re.search(r"\b(19|20)\d\d\b", label)
    if year and year.group(0) not in text:
        text += f" ({year.group(0)})"
    return text or label[:limit]
