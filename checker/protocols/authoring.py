"""Protocol authoring: ``pertinence protocols new ID`` writes a commented, valid template and a pass
and a fail sample that really pass and fail against it (see docs/protocols.md, "Writing a protocol
in 15 minutes"). The author then replaces the example act, criteria and texts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ID_PATTERN = re.compile(r"[A-Z][A-Z0-9]*(-[A-Z0-9]+)*")
KINDS = ("imaging", "biology", "transport", "medication")

_ACT = """    <!-- WHAT THE PROTOCOL APPLIES TO. One <act> per examination (imaging, biology, transport):
         codes (system = CCAM, CPT, LOINC, SNOMED, ICD10, NABM; match="prefix" for a whole branch)
         and/or regular expressions on the order's wording, written lower-case without accents. -->
    <act id="exemple-acte">
      <label lang="fr">acte exemple</label>
      <label lang="en">example act</label>
      <pattern>\\bacte exemple\\b</pattern>
    </act>"""

_MEDICATION = """    <!-- WHAT THE PROTOCOL APPLIES TO. One <medication> class per group of drugs, by ATC code
         prefix (N05CD = every benzodiazepine hypnotic). Replace the example class. -->
    <medication id="exemple-classe">
      <label lang="fr">classe exemple</label>
      <label lang="en">example class</label>
      <atc>Z99ZZ</atc>
    </medication>"""

_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Protocol {pid}: written by `pertinence protocols new`. Replace every "exemple" part, then run
       pertinence protocols validate {filename}
       python tools/refresh_manifest.py
     and make the two samples beside it tell the truth (docs/protocols.md, "Writing a protocol in
     15 minutes"). -->
<protocol xmlns="urn:pertinence:protocol:1" id="{pid}" kind="{kind}" version="1">
  <title lang="fr">Titre du protocole (à remplacer)</title>
  <title lang="en">Protocol title (to replace)</title>
  <!-- THE SOURCE: the publisher's own page of the exact document (HAS, SFR, ANSM, Légifrance…),
       never a search page or a copy on another site; year = the document's date. Quote nothing:
       say in your own words, in <description>, what you encoded and how you read thresholds. -->
  <source publisher="HAS" year="2026" url="https://www.has-sante.fr/jcms/REMPLACER">Titre exact du document, date</source>
  <description lang="fr">Ce que le protocole encode, et comment les seuils ont été lus (à remplacer).</description>
  <description lang="en">What the protocol encodes and how thresholds were read (to replace).</description>
  <appliesTo>
{applies}
  </appliesTo>
  <criteria>
    <!-- CRITERIA: named yes / no / unknown questions about the order and the patient record.
         <condition in="reason"> reads the order's reasons (codes, text, referenced Conditions);
         in="record" the problem list; negated text ("pas de …") never counts. Other primitives:
         age, sex, observation, onset, otherOrder, medication, allergy, treatmentDuration,
         reasonGiven, ref (docs/protocols.md, table "Criteria"). -->
    <criterion id="indication">
      <label lang="fr">indication reconnue par la source</label>
      <label lang="en">indication accepted by the source</label>
      <condition in="any">
        <pattern>\\bindication exemple\\b</pattern>
      </condition>
    </criterion>
    <criterion id="motif">
      <label lang="fr">motif de la prescription</label>
      <label lang="en">reason for the order</label>
      <reasonGiven/>
    </criterion>
  </criteria>
  <!-- THE DECISION GRAPH: each <check> asks one criterion and gives all three edges (yes, no,
       unknown), so you decide what a missing datum means. Outcomes: off-protocol (a finding with
       a message and an alternative), undetermined (a finding naming the missing datum), conform
       and not-applicable (silent). Severity: info, warning or critical. -->
  <decision start="a-indication">
    <check id="a-indication" criterion="indication" yes="conforme" no="a-motif" unknown="a-motif">
      <label lang="fr">Indication reconnue ?</label>
      <label lang="en">Accepted indication?</label>
    </check>
    <check id="a-motif" criterion="motif" yes="hors-protocole" no="sans-motif" unknown="sans-motif">
      <label lang="fr">Motif indiqué ?</label>
      <label lang="en">Reason stated?</label>
    </check>
    <outcome id="conforme" verdict="conform"/>
    <outcome id="hors-protocole" verdict="off-protocol" severity="warning">
      <message lang="fr">Message en français : pourquoi la prescription sort du protocole (à remplacer).</message>
      <message lang="en">English message: why the order is off-protocol (to replace).</message>
      <alternative lang="fr">Ce que la source recommande à la place (à remplacer).</alternative>
      <alternative lang="en">What the source recommends instead (to replace).</alternative>
    </outcome>
    <outcome id="sans-motif" verdict="undetermined" severity="info">
      <message lang="fr">Aucun motif enregistré : impossible de dire si l'indication est reconnue.</message>
      <message lang="en">No reason recorded: whether the indication is accepted cannot be told.</message>
      <alternative lang="fr">Indiquer le motif de la prescription.</alternative>
      <alternative lang="en">State the reason for the order.</alternative>
      <missing lang="fr">motif de la prescription</missing>
      <missing lang="en">reason for the order</missing>
    </outcome>
  </decision>
</protocol>
"""


def slug(protocol_id: str) -> str:
    """File stem of a protocol id: ``HAS-GONALGIE-IRM`` → ``has-gonalgie-irm``."""
    return protocol_id.lower()


def _order(kind: str, pid: str, reason: str) -> dict[str, Any]:
    common: dict[str, Any] = {"id": pid + "o", "status": "active", "intent": "order",
                              "subject": {"reference": f"Patient/{pid}"}, "authoredOn": "2026-01-10",
                              "reasonCode": [{"text": reason}]}
    if kind == "medication":
        return {"resourceType": "MedicationRequest", **common,
                "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "Z99ZZ01"}],
                                              "text": "Médicament exemple"}}
    return {"resourceType": "ServiceRequest", **common, "code": {"text": "Acte exemple"}}


def _bundle(kind: str, pid: str, reason: str) -> dict[str, Any]:
    order = _order(kind, pid, reason)
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": f"urn:uuid:patient-{pid}",
         "resource": {"resourceType": "Patient", "id": pid, "birthDate": "1970-01-01", "gender": "female"}},
        {"fullUrl": f"urn:uuid:order-{pid}", "resource": order},
    ]}


def new_protocol(protocol_id: str, *, kind: str, protocols_dir: Path, samples_dir: Path) -> list[Path]:
    """Write ``<protocols_dir>/<id>.xml`` and its fail (+ .expect) and pass samples under
    ``<samples_dir>/OP001`` (or ``OP002`` for a medication protocol); returns the written paths.
    Refuses an id the schema would refuse and never overwrites a file."""
    if not ID_PATTERN.fullmatch(protocol_id):
        raise ValueError(f"protocol id {protocol_id!r} must be upper-case words joined by '-' (e.g. HAS-GONALGIE-IRM)")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    stem = slug(protocol_id)
    rule = "OP002" if kind == "medication" else "OP001"
    xml_path = protocols_dir / f"{stem}.xml"
    fail_path = samples_dir / rule / f"fail-{stem}.json"
    expect_path = samples_dir / rule / f"fail-{stem}.expect"
    pass_path = samples_dir / rule / f"pass-{stem}.json"
    paths = [xml_path, fail_path, expect_path, pass_path]
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise FileExistsError(f"already exists: {', '.join(existing)}")
    patient = re.sub(r"[^a-z0-9]", "", stem)[:40] or "p"
    applies = _MEDICATION if kind == "medication" else _ACT
    resource = "MedicationRequest" if kind == "medication" else "ServiceRequest"
    texts = {
        xml_path: _TEMPLATE.format(pid=protocol_id, kind=kind, filename=xml_path.name, applies=applies),
        fail_path: json.dumps(_bundle(kind, patient + "f", "autre motif"), ensure_ascii=False, indent=1) + "\n",
        expect_path: json.dumps({"findings": [{
            "implicated": [f"{resource}/{patient}fo"],
            "severity": "warning",
            "evidence": {"protocol": protocol_id, "branch": "hors-protocole"},
        }]}, ensure_ascii=False, indent=1) + "\n",
        pass_path: json.dumps(_bundle(kind, patient + "p", "indication exemple"), ensure_ascii=False, indent=1) + "\n",
    }
    for path, text in texts.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return paths
