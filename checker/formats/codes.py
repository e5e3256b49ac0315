"""Code systems and extension names Pertinence defines for its FHIR and CDS Hooks outputs.

One URI per concept, shared by every format (cards' ``source.topic`` and DetectedIssue ``code`` use
the same finding-category system). Documented in docs/cds-hooks.md.
"""

from __future__ import annotations

BASE = "https://pertinence.dev/fhir"

CATEGORY_SYSTEM = f"{BASE}/CodeSystem/finding-category"
"""Finding categories (``interaction``, ``duplicate``, ``contraindication`` …, and ``data-missing``
for the service's partial-check card)."""
RULE_SYSTEM = f"{BASE}/CodeSystem/rule"
"""Rule ids (``IX001`` …)."""
FINGERPRINT_SYSTEM = f"{BASE}/NamingSystem/finding-fingerprint"
"""A finding's stable fingerprint (16 hex digits): the same problem gives the same value on every run."""
LEVEL_SYSTEM = f"{BASE}/CodeSystem/ansm-interaction-level"
"""Constraint levels of the ANSM interaction thesaurus: ``CI``, ``AD``, ``PE``, ``APEC``."""
SUBSTANCE_SYSTEM = f"{BASE}/CodeSystem/substance"
"""Pertinence's substance keys (French DCI as the ANSM thesaurus writes it, normalised)."""
ATC_SYSTEM = "http://www.whocc.no/atc"
"""WHO ATC classification (FHIR's registered URI for ATC)."""
ACTION_SYSTEM = f"{BASE}/CodeSystem/proposed-action"
"""What a finding proposes (``stop-or-replace``, ``switch`` …)."""
OVERRIDE_SYSTEM = f"{BASE}/CodeSystem/override-reason"
"""Override reasons offered on cards."""
PROPOSAL_EXTENSION = f"{BASE}/StructureDefinition/proposed-action"
"""DetectedIssue extension: what Pertinence proposes (not an action taken, which is ``mitigation``)."""
CARD_EXTENSION = "dev.pertinence.finding"
"""CDS Hooks card ``extension`` key (reverse-domain naming, CDS Hooks 2.0 "Extensions"): the finding's
stable ``fingerprint``, ``rule`` and ``category``, for de-duplicating cards across calls."""
