"""Identification (ID…): prescription lines the checker could not identify surely.

A line that is not identified, or identified below the confidence rules require, is never
silently skipped: it is reported as an ``unidentified`` information finding naming its text.
"""

from __future__ import annotations

from collections.abc import Iterator

from checker.findings import Finding, Source
from checker.model import RULE_CONFIDENCE, MedicationOrder
from checker.registry import RuleCall, rule

SOURCE = Source(
    "Code de la santé publique, art. R. 5132-3, 2° (l'ordonnance indique la dénomination du médicament ou "
    "son principe actif en dénomination commune); identification contre la Base de données publique des "
    "médicaments (BDPM)",
    "https://www.legifrance.gouv.fr/codes/id/LEGIARTI000006915531",
    "CSP version en vigueur; BDPM 2026-01",
)


def _label(order: MedicationOrder, en: bool) -> str:
    label = order.label.strip()
    if label:
        return label
    codes = [f"{c.system.rsplit('/', 1)[-1] or 'code'} {c.code}" for c in order.medication.codings]
    return ", ".join(codes) or ("(line without name or code)" if en else "(ligne sans libellé ni code)")


def _fr(value: float) -> str:
    return f"{value:.2f}".replace(".", ",")


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    en = call.settings.lang == "en"
    for order in call.record.medication_orders:
        if order.status == "entered-in-error":
            continue
        ident = order.identity
        if ident is not None and ident.substances and ident.confidence >= RULE_CONFIDENCE:
            continue  # identified well enough for the rules: nothing to say (most lines)
        label = _label(order, en)
        if ident is None or not ident.substances:
            summary = (f"Medication not identified: {_short(label)}" if en
                       else f"Médicament non identifié : {_short(label)}")
            detail = (
                f"The line \u00ab {label} \u00bb matches no substance or product of the drug referential "
                "(codes and text were tried). No other check was run on it; verify the prescription."
                if en else
                f"La ligne \u00ab {label} \u00bb ne correspond à aucune substance ni spécialité du référentiel "
                "(codes et libellé essayés). Aucune autre vérification n'a porté sur elle : à contrôler."
            )
            if label.startswith("#"):
                detail += (" The medication is a reference to a resource that could not be read." if en else
                           " Le médicament est une référence vers une ressource qui n'a pu être lue.")
            yield call.finding(summary=summary, detail=detail, implicated=[order.ref], key="unidentified",
                               evidence={"text": label, "method": ident.method if ident else "none",
                                         "confidence": 0.0})
        else:  # identified, below the rules' confidence
            read_as = " + ".join(s.name for s in ident.substances)
            summary = (f"Uncertain identification: {_short(label, 50)} → {_short(read_as, 40)}" if en
                       else f"Identification incertaine : {_short(label, 50)} → {_short(read_as, 40)}")
            alts = f" Autres possibilités : {', '.join(ident.alternatives)}." if ident.alternatives else ""
            alts_en = f" Other candidates: {', '.join(ident.alternatives)}." if ident.alternatives else ""
            detail = (
                f"The line \u00ab {label} \u00bb was read as {read_as} ({ident.method}, confidence "
                f"{ident.confidence:.2f}, below the {RULE_CONFIDENCE:.2f} the rules require).{alts_en} "
                "Clinical checks skipped it; state the DCI or a CIP/CIS code." if en else
                f"La ligne \u00ab {label} \u00bb a été lue comme {read_as} ({ident.method}, confiance "
                f"{_fr(ident.confidence)}, sous le seuil de {_fr(RULE_CONFIDENCE)} exigé par les règles).{alts} "
                "Les vérifications cliniques ne l'ont pas prise en compte : préciser la DCI ou un code CIP/CIS."
            )
            yield call.finding(
                summary=summary, detail=detail, implicated=[order.ref], key="uncertain",
                evidence={"text": label, "method": ident.method, "confidence": ident.confidence,
                          "substances": [s.key for s in ident.substances],
                          "alternatives": list(ident.alternatives), "note": ident.note},
            )
