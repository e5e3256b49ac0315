"""Loader of the prescriber-indicator definitions (``referentials/indicators/rosp2016.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.findings import Source
from checker.referentials import ManifestEntry, ReferentialError, loader

REF_ID = "indicators-rosp2016"
KINDS = ("line_share", "patient_duration", "patient_share", "patient_polypharmacy")


@dataclass(frozen=True, slots=True)
class Indicator:
    """One prescriber indicator: what is counted above and below the fraction bar, and why."""

    id: str
    kind: str
    title: dict[str, str]
    numerator: dict[str, str]
    denominator: dict[str, str]
    source: Source
    direction: str  # "higher" or "lower" is better
    reference: float | None = None  # reference value in percent, when a source gives one
    denominator_atc: tuple[str, ...] = ()
    numerator_atc: tuple[str, ...] = ()
    in_repertoire: bool = False
    product_contains: tuple[str, ...] = ()
    max_days: int | None = None
    min_age: int | None = None
    min_substances: int | None = None

    def text(self, field: str, lang: str) -> str:
        value: dict[str, str] = getattr(self, field)
        return value.get(lang) or value.get("fr", "")


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return 1


def parse(text: str, where: str) -> tuple[Indicator, ...]:
    """Parse and validate the definitions; errors name ``file:line``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReferentialError(f"{where}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    sources_raw = data.get("sources") if isinstance(data, dict) else None
    items = data.get("indicators") if isinstance(data, dict) else None
    if not isinstance(items, list) or not isinstance(sources_raw, dict):
        raise ReferentialError(f"{where}:1: expected an object with 'indicators' (list) and 'sources' (object)")
    sources: dict[str, Source] = {}
    for key, s in sources_raw.items():
        if not isinstance(s, dict) or not s.get("label") or not s.get("url"):
            raise ReferentialError(f"{where}:{_line_of(text, json.dumps(key))}: source {key!r} needs a label and a url")
        sources[key] = Source(s["label"], s["url"], s.get("edition", ""))
    out: list[Indicator] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        ident = item.get("id") if isinstance(item, dict) else None
        line = _line_of(text, f'"id": "{ident}"') if ident else 1
        here = f"{where}:{line}"

        def need(cond: bool, message: str) -> None:
            if not cond:
                raise ReferentialError(f"{here}: indicator {ident or i}: {message}")

        need(bool(isinstance(item, dict) and isinstance(ident, str) and ident), "missing id")
        assert isinstance(ident, str)  # need() raised otherwise
        need(ident not in seen, "duplicate id")
        seen.add(ident)
        kind = item.get("kind")
        need(kind in KINDS, f"kind must be one of {', '.join(KINDS)}")
        for name in ("title", "numerator", "denominator"):
            need(isinstance(item.get(name), dict) and bool(item[name].get("fr")), f"{name} needs a French text")
        need(item.get("source") in sources, f"unknown source {item.get('source')!r}")
        need(item.get("direction") in ("higher", "lower"), "direction must be 'higher' or 'lower'")
        ref = item.get("reference")
        need(ref is None or isinstance(ref, (int, float)) and 0 <= ref <= 100, "reference must be a percentage or null")
        rule: dict[str, Any] = item.get("numerator_rule") or {}
        den_atc = tuple(item.get("denominator_atc") or ())
        num_atc = tuple(item.get("numerator_atc") or ())
        if kind == "line_share":
            need(bool(den_atc), "line_share needs denominator_atc")
            need(bool(rule.get("in_repertoire") or rule.get("product_contains")), "line_share needs a numerator_rule")
        if kind == "patient_duration":
            need(bool(den_atc) and isinstance(item.get("max_days"), int), "patient_duration needs denominator_atc and max_days")
        if kind == "patient_share":
            need(bool(num_atc), "patient_share needs numerator_atc")
            need(bool(den_atc) or isinstance(item.get("min_age"), int), "patient_share needs denominator_atc or min_age")
        if kind == "patient_polypharmacy":
            need(isinstance(item.get("min_age"), int) and isinstance(item.get("min_substances"), int),
                 "patient_polypharmacy needs min_age and min_substances")
        for code in den_atc + num_atc:
            need(isinstance(code, str) and code[:1].isalpha() and code.upper() == code, f"bad ATC prefix {code!r}")
        out.append(Indicator(
            id=ident, kind=kind, title=item["title"], numerator=item["numerator"], denominator=item["denominator"],
            source=sources[item["source"]], direction=item["direction"],
            reference=float(ref) if ref is not None else None,
            denominator_atc=den_atc, numerator_atc=num_atc, in_repertoire=bool(rule.get("in_repertoire")),
            product_contains=tuple(p.upper() for p in rule.get("product_contains") or ()),
            max_days=item.get("max_days"), min_age=item.get("min_age"), min_substances=item.get("min_substances"),
        ))
    return tuple(out)


@loader(REF_ID)
def load(entry: ManifestEntry, root: Path) -> tuple[Indicator, ...]:
    path = entry.paths(root)[0]
    return parse(path.read_text(encoding="utf-8"), str(path))
