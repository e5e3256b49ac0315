"""Presentation labels: how many dispensing units a pack holds, and a comparable dose-form key.

BDPM presentation labels read like ``plaquette(s) PVC aluminium de 28 comprimé(s)``,
``30 plaquettes prédécoupées unitaires … de 1 comprimé`` or ``5 cartouche(s) en verre de 3 ml``;
CNOPS presentations like ``1 BOITE 30 COMPRIME`` or ``1 BOITE 1 FLACON 40 ML``. The unit price of
a presentation is its price divided by :func:`units_in_pack`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from checker.model import Quantity
from checker.text import fold_keeping_punctuation as fold


@dataclass(frozen=True, slots=True)
class PackContent:
    """What one pack holds: ``count`` dispensing units of kind ``unit`` (``comprime``, ``ml`` …)."""

    count: float
    unit: str


# Countable dispensing units (singular, folded) and the volume/mass units a pack may be measured in.
_COUNT_UNITS = {
    "comprime": "comprime", "comprimes": "comprime", "gelule": "gelule", "gelules": "gelule",
    "capsule": "capsule", "capsules": "capsule", "sachet": "sachet", "sachets": "sachet",
    "suppositoire": "suppositoire", "suppositoires": "suppositoire", "ampoule": "ampoule",
    "ampoules": "ampoule", "flacon": "flacon", "flacons": "flacon", "seringue": "seringue",
    "seringues": "seringue", "stylo": "stylo", "stylos": "stylo", "cartouche": "cartouche",
    "cartouches": "cartouche", "dose": "dose", "doses": "dose", "patch": "patch", "patchs": "patch",
    "dispositif": "dispositif", "dispositifs": "dispositif", "lyophilisat": "lyophilisat",
    "pastille": "pastille", "pastilles": "pastille", "ovule": "ovule", "ovules": "ovule",
    "recipient": "recipient", "recipients": "recipient", "unidose": "recipient", "unidoses": "recipient",
}
_ONE_DOSE_UNITS = frozenset({"comprime", "gelule", "capsule", "lyophilisat"})
"""Solid oral units that each hold one unit of the strength: a tablet and a capsule of the same
strength and dose-form key are priced against each other one for one."""


def comparable_units(a: str, b: str) -> bool:
    """Unit prices in these pack units compare: the same unit, or two one-dose solid oral units.
    A price per g, per ml or per spray never compares with a price per tablet, nor with each other."""
    return a == b or (a in _ONE_DOSE_UNITS and b in _ONE_DOSE_UNITS)


_MEASURE_UNITS = {"ml": "ml", "l": "ml", "g": "g", "mg": "g"}
_MEASURE_FACTOR = {"ml": 1.0, "l": 1000.0, "g": 1.0, "mg": 0.001}

_NUM = r"(\d+(?:[.,]\d+)?)"
# "<n> <container>(s) ... de <m> <unit>(s)"  → n × m units; the leading count is optional.
_BDPM = re.compile(rf"^(?:{_NUM}\s+)?([a-z]+)(?:\(s\))?\b.*?\bde\s+{_NUM}\s*([a-z]+)", re.S)
_CNOPS = re.compile(rf"^{_NUM}\s+boite\s+{_NUM}\s+([a-z]+)(?:\s+{_NUM}\s*(ml|l|g|mg)\b)?")
_CNOPS_VOL = re.compile(rf"^{_NUM}\s+(?:[a-z]+)\s+{_NUM}\s*(ml|l|g|mg)\b")


def _num(text: str) -> float:
    return float(text.replace(",", "."))


def _unit(word: str) -> str | None:
    w = word.removesuffix("(s)")
    return _COUNT_UNITS.get(w) or _MEASURE_UNITS.get(w)


# Containers that hold one dose of the specialty's strength when the label gives no inner count
# ("28 sachet(s) polyéthylène", "1 seringue(s) préremplie(s)"), or whose inner mass is the powder
# ("1 flacon(s) de poudre en verre de 1 g": the vial is the unit, the gram of salt is not).
_DOSE_CONTAINERS = frozenset({"sachet", "seringue", "ampoule", "flacon", "suppositoire", "ovule", "dose",
                              "stylo", "cartouche", "patch", "dispositif", "recipient"})
_LEAD_ONLY = re.compile(rf"^{_NUM}\s+([a-z]+)(?:\(s\))?(?:-dose\(s\))?\b")


def units_in_pack(label: str, form: str = "") -> PackContent | None:
    """Dispensing units in a pack from its presentation label; ``None`` when the label says no number.

    >>> units_in_pack("plaquette(s) PVC aluminium de 28 comprimé(s)")
    PackContent(count=28.0, unit='comprime')
    >>> units_in_pack("5 cartouche(s) en verre de 3 ml")
    PackContent(count=15.0, unit='ml')
    >>> units_in_pack("1 BOITE 30 COMPRIME")
    PackContent(count=30.0, unit='comprime')
    """
    t = fold(label)
    t = re.sub(r"\(distributeur parallele[^)]*\)", "", t).strip()
    m = _CNOPS.match(t)
    if m:
        boxes, n, word, vol, vol_unit = m.groups()
        if vol and vol_unit:
            return PackContent(_num(boxes) * _num(n) * _num(vol) * _MEASURE_FACTOR[vol_unit], _MEASURE_UNITS[vol_unit])
        unit = _unit(word)
        return PackContent(_num(boxes) * _num(n), unit) if unit else None
    m = _CNOPS_VOL.match(t)
    if m:
        n, vol, vol_unit = m.groups()
        return PackContent(_num(n) * _num(vol) * _MEASURE_FACTOR[vol_unit], _MEASURE_UNITS[vol_unit])
    m = _BDPM.match(t)
    if not m:
        return _containers_only(t)
    lead, container, n, word = m.groups()
    if word in ("g", "mg") and _dose_of_powder(form, _unit(container)):
        return PackContent(_num(lead) if lead is not None else 1.0, _unit(container) or container)
    unit = _unit(word)
    if unit is None:
        return None
    count = _num(n) * (_MEASURE_FACTOR.get(word, 1.0) if word in _MEASURE_UNITS else 1.0)
    if lead is not None:
        count *= _num(lead)
    return PackContent(count, unit)


def _dose_of_powder(form: str, container: str | None) -> bool:
    """A sachet of powder, or a vial or ampoule of powder for injection, holds one dose: count it. A
    flacon of powder for an oral suspension does not (its fill is no dose)."""
    f = fold(form)
    if not ("poudre" in f or "lyophilisat" in f):
        return False
    return container == "sachet" or (container in ("flacon", "ampoule") and ("injectable" in f or "perfusion" in f))


def _containers_only(t: str) -> PackContent | None:
    """``28 sachet(s) polyéthylène`` → 28 sachets: a leading count of one-dose containers and no other
    quantity in the label (a ``flacon contenant 24,4 g`` of powder to reconstitute says no dose)."""
    m = _LEAD_ONLY.match(t)
    rest = re.sub(r"\b\d+\s+aiguilles?\b", "", t[m.end():]) if m is not None else ""
    if m is None or re.search(r"\d", rest):
        return None
    unit = _unit(m.group(2))
    return PackContent(_num(m.group(1)), unit) if unit in _DOSE_CONTAINERS else None


# Qualifiers that change how a dose form is taken or released: kept in the form key. Everything
# else (pelliculé, enrobé, sécable, colours …) is dropped.
_FORM_KEEP = (
    ("orodispersible", "orodispersible"), ("a croquer", "a croquer"), ("effervescent", "effervescent"),
    ("dispersible", "dispersible"), ("liberation prolongee", "lp"), ("liberation modifiee", "lm"),
    ("gastro-resistant", "gastro-resistant"), ("gastroresistant", "gastro-resistant"), ("buvable", "buvable"),
    ("injectable", "injectable"), ("perfusion", "injectable"), ("sublingual", "sublingual"),
)
_SOLID_ORAL = {"comprime", "gelule", "capsule"}


@lru_cache(maxsize=16384)
def form_key(form: str) -> str:
    """A comparable dose-form key: ``comprimé pelliculé sécable`` → ``oral-solid``,
    ``gélule gastro-résistante`` → ``oral-solid gastro-resistant``.

    Tablets and capsules share ``oral-solid`` (the répertoire treats oral immediate-release forms as
    one pharmaceutical form); release and administration qualifiers stay distinct.
    """
    t = fold(form).replace("(e)", "").replace("(s)", "")
    words = t.split()
    head = words[0] if words else ""
    head = "oral-solid" if head.rstrip("s") in _SOLID_ORAL else head.rstrip("s")
    quals = sorted({v for k, v in _FORM_KEEP if k in t})
    if head == "solution" and "injectable" in quals:
        head = "liquid"
    return " ".join([head, *quals]).strip()


_RELEASE = (("liberation prolongee", "lp"), ("l.p.", "lp"), ("liberation modifiee", "lm"),
            ("liberation retardee", "gastro-resistant"), ("gastro-resistant", "gastro-resistant"),
            ("gastroresistant", "gastro-resistant"))


@lru_cache(maxsize=16384)
def interchangeable_form(form: str, routes: tuple[str, ...] = ()) -> str:
    """The form class within which members of one generic group replace each other.

    Code de la santé publique, art. L. 5121-1, 5° a: for generics, the different immediate-release
    oral forms count as one pharmaceutical form. So every oral immediate-release form (tablet,
    capsule, orodispersible or effervescent tablet, oral lyophilisate, granules, oral solution…)
    shares the key ``oral``; prolonged, modified or delayed (gastro-resistant) release stays apart
    (``oral lp`` …), and other routes keep their own dose-form key (:func:`form_key`). Unit prices
    are then compared only in comparable units (:func:`comparable_units`).
    Source: https://www.legifrance.gouv.fr/codes/article_lc/LEGIARTI000006689870 (art. L. 5121-1, text
    codified by ordonnance n° 2000-548 of 15 June 2000, in force 22 June 2000, taking over art. L. 601-6)."""
    f = fold(form)
    oral = any(fold(r) == "orale" for r in routes) or (not routes and (
        re.search(r"\b(buvable|orale?|orodispersible)\b", f) is not None
        or (form_key(form).startswith("oral-solid") and not re.search(r"vaginal|sublingual|buccal", f))))
    if not oral:
        return form_key(form)
    release = sorted({v for k, v in _RELEASE if k in f} | ({"lp"} if re.search(r"\blp\b", f) else set()))
    return " ".join(["oral", *release])


_MASS = {"g": 1000.0, "mg": 1.0, "microgrammes": 0.001, "microgramme": 0.001, "µg": 0.001, "\u03bcg": 0.001,
         "ug": 0.001,
         "mcg": 0.001, "ng": 1e-6}
_UNITS_INTL = {"ui": "U", "u": "U", "unites": "U", "unite": "U", "[iu]": "U", "iu": "U", "mui": "MU"}


def normalise_strength(q: Quantity | None) -> Quantity | None:
    """Strength in a canonical unit: masses in ``mg``, international units in ``U`` (per unit or ml)."""
    if q is None:
        return None
    unit = fold(q.unit).replace(" ", "")
    per = ""
    if "/" in unit:
        unit, per = unit.split("/", 1)
    if unit in _MASS:
        return Quantity(round(q.value * _MASS[unit], 6), "mg" + (f"/{per}" if per else ""))
    if unit in _UNITS_INTL:
        base = _UNITS_INTL[unit]
        value = q.value * (1e6 if base == "MU" else 1.0)
        return Quantity(value, "U" + (f"/{per}" if per else ""))
    return Quantity(q.value, q.unit)
