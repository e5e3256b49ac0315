"""Identification (ID…): prescription lines the checker could not identify surely.

A line that is not identified, or identified below the confidence rules require, is never
silently skipped: it is reported as an ``unidentified`` information finding naming its text.
"""

from __future__ import annotations

from collections.abc import Iterator

from checker.findings import Finding, Message, Param, Quantity, Source, Word
from checker.model import RULE_CONFIDENCE, MedicationOrder
from checker.registry import RuleCall, rule

SOURCE = Source(
    "Code de la santé publique, art. R. 5132-3, 2° (l'ordonnance indique la dénomination du médicament ou "
    "son principe actif en dénomination commune); identification contre la Base de données publique des "
    "médicaments (BDPM)",
    "https://www.legifrance.gouv.fr/codes/id/LEGIARTI000006915531",
    "CSP version en vigueur; BDPM 2026-01",
)


METHODS = ("cis", "cip13", "cip7", "ucd", "atc", "rxnorm", "ingredients", "text-exact", "text-fuzzy")
"""How a line can have been identified (catalogue table ``id_method``)."""


def _method(method: str) -> Param:
    return Word("id_method", method) if method in METHODS else method


def _label(order: MedicationOrder) -> Param:
    """The line's text, else its codes, else a word saying it has neither."""
    label = order.label.strip()
    if label:
        return label
    codes = [f"{c.system.rsplit('/', 1)[-1] or 'code'} {c.code}" for c in order.medication.codings]
    return ", ".join(codes) or Word("id_label", "no-text")


@rule(
    "ID001",
    name="unidentified-medication",
    category="unidentified",
    severity="info",
    source=SOURCE,
    referentials=("bdpm", "substances"),
)
def unidentified_medication(call: RuleCall) -> Iterator[Finding]:
    """Médicament non identifié ou identifié avec doute

    Une ligne de prescription dont le médicament n'a pu être rattaché à aucune substance de la BDPM
    (ni par code CIP/CIS/ATC/RxNorm, ni par son libellé) échappe à toutes les autres vérifications
    (interactions, doublons, contre-indications, équivalents moins chers). Il en va de même d'une
    ligne identifiée avec une confiance inférieure au seuil exigé par les règles (0,85): libellé
    approché, nom de marque couvrant des produits différents, code ATC de plusieurs substances.
    La règle le signale pour que rien ne reste vérifié en silence.

    Source: art. R. 5132-3 du code de la santé publique (mentions de l'ordonnance) et BDPM.
    """
    for order in call.record.medication_orders:
        if order.status == "entered-in-error":
            continue
        ident = order.identity
        if ident is not None and ident.substances and ident.confidence >= RULE_CONFIDENCE:
            continue  # identified well enough for the rules: nothing to say (most lines)
        label = _label(order)
        text = label if isinstance(label, str) else ""
        if ident is None or not ident.substances:
            extra = (Message("ID001.reference"),) if text.startswith("#") else ()
            yield call.finding(message=Message("ID001", {"label": label}, extra), implicated=[order.ref],
                               key="unidentified", evidence={"text": text, "method": ident.method if ident else "none",
                                                             "confidence": 0.0})
        else:  # identified, below the rules' confidence
            read_as = " + ".join(s.name for s in ident.substances)
            extra = (Message("ID001.alternatives", {"alternatives": ", ".join(ident.alternatives)}),) \
                if ident.alternatives else ()
            message = Message("ID001-uncertain", {"label": label, "read_as": read_as, "method": _method(ident.method),
                                                  "confidence": Quantity(ident.confidence, "", 2),
                                                  "threshold": Quantity(RULE_CONFIDENCE, "", 2)}, extra)
            yield call.finding(
                message=message, implicated=[order.ref], key="uncertain",
                evidence={"text": text, "method": ident.method, "confidence": ident.confidence,
                          "substances": [s.key for s in ident.substances],
                          "alternatives": list(ident.alternatives), "note": ident.note},
            )
