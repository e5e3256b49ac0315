"""Jurisdiction price referentials: priced packs of a product and of its substitutes.

France (``fr``): BDPM presentations through the drug index (``refs.get("bdpm")``); the price used
is the presentation's public price without dispensing fees (``Prix``), in EUR.
Morocco (``ma``): the CNOPS 2014 list (``refs.get("cnops-2014")``); the price used is the public
price (PPV), in MAD; CNOPS reimburses a rate of the reimbursement base (PRIX_BR), which for a
princeps with generics is the generic's price.

Matching a BDPM-identified product to CNOPS rows (there is no shared code): same set of
substances (CNOPS DCI names go through the drug index's salt-aware substance keys), same strength
per unit (converted to mg or U), same dose-form key (:func:`~checker.economics.packs.form_key`);
the prescribed product's own rows are those whose CNOPS name starts with its brand. When no row
matches, the product is reported as absent from the jurisdiction's list: nothing is guessed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from checker.economics.packs import PackContent, fold, interchangeable_form, normalise_strength, units_in_pack
from checker.memo import by_identity
from checker.model import MedicationIdentity, Quantity

CURRENCY = {"fr": "EUR", "ma": "MAD"}
# BDPM availability codes (CIS_CIP_Dispo_Spec) that make a presentation unavailable: 1 rupture de
# stock, 3 arrêt de commercialisation. A supply tension (2) is no rupture: the presentation can still
# be dispensed (a rupture is the pharmacy's inability to dispense within 72 hours, ministère de la
# santé, "Rupture d'approvisionnement d'un médicament"); it is kept and named in the suggestion.
UNAVAILABLE_SHORTAGE = {1, 3}
SUPPLY_TENSION = 2


@dataclass(frozen=True, slots=True)
class PricedPack:
    """One priced presentation in a jurisdiction's referential."""

    jurisdiction: str
    code: str  # CIP13 (fr) or EAN13 (ma)
    cis: str | None
    product: str
    label: str
    form: str
    units: PackContent | None
    price: float | None
    currency: str
    reimbursement_rate: float | None  # fraction (0.65)
    reimbursement_base: float | None = None  # CNOPS PRIX_BR
    marketed: bool = True
    shortage: str = ""  # shortage status text when unavailable
    generic: bool | None = None
    tension: str = ""  # supply tension status text (still dispensable)

    @property
    def unit_price(self) -> float | None:
        if self.price is None or self.units is None or self.units.count <= 0:
            return None
        return self.price / self.units.count

    @property
    def available(self) -> bool:
        """Counts as an alternative: marketed, reimbursed, priced, countable, not in shortage."""
        return (self.marketed and not self.shortage and bool(self.reimbursement_rate)
                and self.unit_price is not None)

    def describe(self) -> dict[str, Any]:
        """The product as it appears in a suggestion (``replace`` / ``with``)."""
        out: dict[str, Any] = {"label": f"{self.product} — {self.label}" if self.label else self.product,
                               "unit_price": round(self.unit_price, 4) if self.unit_price is not None else None,
                               "currency": self.currency}
        if self.jurisdiction == "fr":
            out["cis"] = self.cis
            out["cip13"] = self.code
        else:
            out["ean13"] = self.code
        if self.units is not None:
            out["units_per_pack"] = self.units.count
            out["unit"] = self.units.unit
        if self.price is not None:
            out["pack_price"] = self.price
        if self.reimbursement_rate is not None:
            out["reimbursement_rate"] = self.reimbursement_rate
        if self.reimbursement_base is not None:
            out["reimbursement_base"] = self.reimbursement_base
        if self.tension:
            out["supply"] = self.tension
        return out


def cheapest(packs: Iterable[PricedPack]) -> PricedPack | None:
    """The pack with the lowest unit price (ties: the code, for determinism)."""
    priced = [p for p in packs if p.unit_price is not None]
    return min(priced, key=lambda p: (p.unit_price, p.code)) if priced else None


# --- France: BDPM ---------------------------------------------------------------------------------


@by_identity
def bdpm_packs(idx: Any, cis: str) -> tuple[PricedPack, ...]:
    """Every presentation of a specialty as priced packs (from the drug index; memoised: the index
    never changes once loaded, and rules ask for the same specialties again and again)."""
    spec = idx.specialty(cis)
    if spec is None:
        return ()
    out: list[PricedPack] = []
    for p in idx.presentations(cis):
        short = p.shortage if p.shortage is not None else None
        shortage = short.status if short is not None and short.status_code in UNAVAILABLE_SHORTAGE else ""
        if not shortage and spec.shortage is not None and spec.shortage.status_code in UNAVAILABLE_SHORTAGE \
                and not getattr(spec.shortage, "cip13", ""):
            shortage = spec.shortage.status
        tension = ""
        for status in (short, spec.shortage if not getattr(spec.shortage, "cip13", "") else None):
            if not tension and status is not None and status.status_code == SUPPLY_TENSION:
                tension = status.status
        rate = p.reimbursement_rate / 100 if p.reimbursement_rate else None
        out.append(PricedPack(
            jurisdiction="fr", code=p.cip13, cis=cis, product=spec.name, label=p.label, form=spec.form,
            units=units_in_pack(p.label, spec.form), price=p.price, currency="EUR", reimbursement_rate=rate,
            marketed=bool(p.marketed and spec.marketed), shortage=shortage,
            generic=None if spec.generic_type is None else spec.generic_type != 0, tension=tension,
        ))
    return tuple(out)


# --- Morocco: CNOPS -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CnopsProduct:
    """A CNOPS row with the keys it is matched on."""

    row: Any  # checker.referentials.prices.CnopsRow
    substances: frozenset[str]
    strengths: tuple[Quantity | None, ...]
    form: str
    name: str  # folded name

    def pack(self) -> PricedPack:
        r = self.row
        return PricedPack(
            jurisdiction="ma", code=r.code, cis=None, product=r.name, label=r.presentation, form=r.form,
            units=units_in_pack(r.presentation), price=r.ppv, currency="MAD",
            reimbursement_rate=r.reimbursement_rate or None, reimbursement_base=r.prix_br, generic=r.generic,
        )


def _cnops_strengths(value: str, unit: str) -> tuple[Quantity | None, ...]:
    values = [v.strip() for v in value.split("/")]
    units = [u.strip() for u in unit.split("/")]
    if len(units) == 1 and len(values) > 1:
        units = units * len(values)
    out: list[Quantity | None] = []
    for v, u in zip(values, units):
        try:
            out.append(normalise_strength(Quantity(float(v.replace(",", ".")), u)))
        except ValueError:
            out.append(None)
    return tuple(out)


def cnops_products(cnops: Any, idx: Any | None) -> list[CnopsProduct]:
    """Every CNOPS row with matching keys (substance keys through the drug index when given)."""
    out: list[CnopsProduct] = []
    for r in cnops.rows:
        names = [n.strip() for n in r.dci.split("/") if n.strip()]
        keys: list[str] = []
        for n in names:
            k = idx.substance_key(n) if idx is not None else None
            keys.append(k or fold(n))
        out.append(CnopsProduct(r, frozenset(keys), _cnops_strengths(r.strength, r.strength_unit),
                                interchangeable_form(r.form), fold(r.name)))
    return out


_CNOPS_PRODUCTS: dict[tuple[int, int], tuple[Any, Any, tuple[CnopsProduct, ...]]] = {}
_CNOPS_LOCK = threading.Lock()


def cnops_products_for(cnops: Any, idx: Any | None) -> tuple[CnopsProduct, ...]:
    """:func:`cnops_products`, computed once per pair of loaded referentials (CNOPS list, drug index).

    Keyed on the two objects themselves (kept alive in the cache, checked by identity), so a cache
    hit is always for the very referentials asked about; the few last pairs are kept."""
    key = (id(cnops), id(idx))
    hit = _CNOPS_PRODUCTS.get(key)
    if hit is not None and hit[0] is cnops and hit[1] is idx:
        return hit[2]
    value = tuple(cnops_products(cnops, idx))
    with _CNOPS_LOCK:
        if len(_CNOPS_PRODUCTS) >= 4:
            _CNOPS_PRODUCTS.clear()
        _CNOPS_PRODUCTS[key] = (cnops, idx, value)
    return value


def _same_strength(a: Quantity | None, b: Quantity | None) -> bool:
    if a is None or b is None:
        return False
    return a.unit.split("/")[0] == b.unit.split("/")[0] and abs(a.value - b.value) <= 1e-6 * max(a.value, 1)


def identity_key(identity: MedicationIdentity) -> tuple[frozenset[str], tuple[Quantity | None, ...], str]:
    """(substances, strengths in canonical units sorted by substance, interchangeable form class: every
    immediate-release oral form is one form, art. L. 5121-1, 5° a CSP) of an identified line."""
    subs = sorted(identity.substances, key=lambda s: s.key)
    return (frozenset(s.key for s in subs), tuple(normalise_strength(s.strength) for s in subs),
            interchangeable_form(identity.form))


def cnops_matches(products: Iterable[CnopsProduct], identity: MedicationIdentity) -> list[CnopsProduct]:
    """CNOPS rows of the same substances, strength and dose form as the identified line."""
    keys, strengths, form = identity_key(identity)
    if not keys or any(s is None for s in strengths):
        return []
    out = []
    for p in products:
        if p.substances != keys or p.form != form or len(p.strengths) != len(strengths):
            continue
        # CNOPS lists strengths in DCI order; compare as multisets.
        remaining = list(p.strengths)
        ok = True
        for s in strengths:
            hit = next((i for i, q in enumerate(remaining) if _same_strength(q, s)), None)
            if hit is None:
                ok = False
                break
            remaining.pop(hit)
        if ok:
            out.append(p)
    return out


def brand_rows(matches: list[CnopsProduct], brand: str) -> list[CnopsProduct]:
    """Rows of the prescribed brand among the matches (CNOPS name starts with the brand)."""
    b = fold(brand)
    if not b:
        return []
    return [m for m in matches if m.name == b or m.name.startswith(b + " ")]
