"""The tables the facts layer reads (validity windows, code lists, words), as data.

They ship in ``referentials/facts/clinical-facts.json`` (manifest id ``clinical-facts``, checked by
the referential store like any other); the loader registered here parses them, and callers hand
:class:`FactTables` to the facts functions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checker.facts.concepts import Code, ConceptSet
from checker.referentials import ManifestEntry, ReferentialError, loader


SYSTEM_URIS = {"LOINC": "http://loinc.org", "SNOMED": "http://snomed.info/sct"}
"""Canonical FHIR URI of the code systems the observation tables name by alias."""


@dataclass(frozen=True, slots=True)
class ObservationCodes:
    """One kind of observation the facts read: its codes, the validity window it is read within
    (a key of ``validity_days``) and the request (prefetch key) that asks an EHR for it."""

    system: str
    codes: frozenset[str]
    window: str = ""
    request: str = ""

    @property
    def uri(self) -> str:
        return SYSTEM_URIS.get(self.system, self.system)


@dataclass(frozen=True, slots=True)
class ObservationRequest:
    """How to ask an EHR for the observations of one request key: every ``(system URI, code)`` of its
    kinds, the observation category that answers it (``None`` when not known), results per page, and
    whether it also asks for the codes the protocols' observation criteria name (``protocols``)."""

    codes: tuple[tuple[str, str], ...]
    category: str | None
    count: int
    protocols: bool = False


@dataclass(frozen=True, slots=True)
class Population:
    """A population defined by age (whole years on the day): from ``from_age`` in it; with
    ``undetermined_from``, ages in [``undetermined_from``, ``from_age``) are left open by the source
    (neither in it nor out of it)."""

    from_age: int
    undetermined_from: int | None = None

    @property
    def undetermined(self) -> tuple[int, int] | None:
        """The band of ages the source leaves open, ``None`` when it decides every age."""
        return None if self.undetermined_from is None else (self.undetermined_from, self.from_age)


@dataclass(frozen=True, slots=True)
class CockcroftGault:
    """The figures of the Cockcroft–Gault formula, as the paper gives them (Nephron 1976;16:31–41):
    clearance (mL/min) = (``age_from`` − age) × weight / (``divisor`` × creatinine in
    ``creatinine_unit``), × ``female_factor`` for a woman; ``weight`` names the weight taken
    (``actual``: the body weight recorded). ``source`` cites where the figures were read."""

    age_from: float
    divisor: float
    female_factor: float
    creatinine_unit: str
    weight: str
    source: str


@dataclass(frozen=True, slots=True)
class FactTables:
    """Validity windows (days), inferred-indication window, observation codes, concept sets and
    population ages."""

    validity_days: dict[str, int] = field(default_factory=dict)
    inferred_indication_days: int = 0
    observations: dict[str, ObservationCodes] = field(default_factory=dict)
    concepts: dict[str, ConceptSet] = field(default_factory=dict)
    requests: dict[str, ObservationRequest] = field(default_factory=dict)
    populations: dict[str, Population] = field(default_factory=dict)
    cockcroft_gault: CockcroftGault | None = None
    renewal_overlap_days: int = 0
    """Days a renewal of the same medication may overlap the line it renews (see :func:`checker.periods.renewal_ends`)."""

    def population(self, name: str) -> Population:
        """The ages of population ``name`` (``elderly``, ``stopp-start``; ``KeyError`` when unknown)."""
        return self.populations[name]

    def window(self, what: str) -> int | None:
        return self.validity_days.get(what)

    def observation_window(self, kind: str) -> int | None:
        """Days before the order within which an observation of ``kind`` still stands."""
        return self.validity_days.get(self.observations[kind].window)

    def concept(self, name: str) -> ConceptSet:
        return self.concepts[name]

    def observation_requests(self) -> dict[str, ObservationRequest]:
        """Each request key with every code of the observation kinds it gathers (in table order)."""
        out: dict[str, ObservationRequest] = {}
        for key, request in self.requests.items():
            codes = tuple((spec.uri, code) for spec in self.observations.values() if spec.request == key
                          for code in sorted(spec.codes))
            out[key] = ObservationRequest(codes, request.category, request.count, request.protocols)
        return out


def parse(data: dict[str, Any]) -> FactTables:
    """Build the tables from the JSON of ``clinical-facts.json`` (``ValueError`` when malformed)."""
    try:
        windows = {k: int(v["days"]) for k, v in data["validity_days"].items()}
        inferred = int(data["inferred_indication_days"]["days"])
        renewal = int(data["renewal_overlap_days"]["days"]) if "renewal_overlap_days" in data else 0
        observations = {k: ObservationCodes(v["system"], frozenset(v["codes"]), v["window"], v["request"])
                        for k, v in data["observations"].items()}
        requests = {k: ObservationRequest((), v.get("category"), int(v["count"]), bool(v.get("protocols", False)))
                    for k, v in data["requests"].items() if k != "about"}
        concepts = {
            k: ConceptSet(tuple(Code(c["system"], c["code"], bool(c.get("prefix", False))) for c in v["codes"]),
                          tuple(re.compile(p) for p in v["patterns"]), bool(v.get("episodic", False)))
            for k, v in data["concepts"].items()}
        populations = {k: Population(int(v["from_age"]), int(v["undetermined_from_age"]) if "undetermined_from_age" in v else None)
                       for k, v in data["populations"].items()}
        cg = data["cockcroft_gault"]
        cockcroft = CockcroftGault(float(cg["age_from"]), float(cg["divisor"]), float(cg["female_factor"]),
                                   str(cg["creatinine_unit"]), str(cg["weight"]), str(cg["source"]))
    except (KeyError, TypeError, ValueError, re.error) as exc:
        raise ValueError(f"clinical-facts: malformed table ({exc})") from None
    for k, spec in observations.items():
        if spec.window not in windows or spec.request not in requests:
            raise ValueError(f"clinical-facts: observation {k!r} names an unknown window or request")
    for k, pop in populations.items():
        if pop.undetermined_from is not None and not pop.undetermined_from <= pop.from_age:
            raise ValueError(f"clinical-facts: populations {k!r}: the undetermined band starts above the age")
    if renewal < 0:
        raise ValueError("clinical-facts: renewal_overlap_days is negative")
    if cockcroft.creatinine_unit != "mg/dL" or cockcroft.weight != "actual" or cockcroft.divisor <= 0:
        raise ValueError("clinical-facts: cockcroft_gault: the formula is read with creatinine in mg/dL and the actual weight")
    return FactTables(windows, inferred, observations, concepts, requests, populations, cockcroft, renewal)


@loader("clinical-facts")
def load_clinical_facts(entry: ManifestEntry, root: Path) -> FactTables:
    """Validity windows, inferred-indication window, observation codes, concept sets and populations."""
    path = root / entry.files[0][0]
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ReferentialError(f"{path}: {exc}") from None
