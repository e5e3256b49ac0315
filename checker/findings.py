"""The findings model: one :class:`Finding` per problem, gathered in a :class:`Report`.

Every output format renders a :class:`Report`; nothing else crosses from rules to formatters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from typing import Any, Literal

VERSION = "0.1.0"
"""The package version (``checker.__version__``), written in every :class:`Report`."""

Category = Literal[
    "interaction",
    "duplicate",
    "contraindication",
    "allergy",
    "dosage",
    "cheaper-equivalent",
    "off-protocol",
    "unidentified",
]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]


class Severity(str, Enum):
    """How urgently a prescriber should look; ordered ``info`` < ``warning`` < ``critical``."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        """Accept ``"warning"``, ``"WARNING"`` or a :class:`Severity`; clear error otherwise."""
        if isinstance(value, Severity):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ValueError(f"unknown severity {value!r}: use one of info, warning, critical") from None


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class Source:
    """The authority behind a finding: label, URL and edition (date or version)."""

    label: str
    url: str = ""
    edition: str = ""

    def cite(self) -> str:
        return f"{self.label} ({self.edition})" if self.edition else self.label


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem about one or more prescription lines of one patient.

    ``implicated`` lists the request resources concerned (``MedicationRequest/<id>`` …) sorted;
    ``key`` is what makes the finding unique besides rule, patient and implicated lines (for
    instance the substance pair); it feeds :attr:`fingerprint`, which never depends on where the
    resource sat in a file.
    """

    rule: str
    category: Category
    severity: Severity
    summary: str
    detail: str
    source: Source
    patient: str | None
    implicated: tuple[str, ...]
    level: str | None = None
    suggestion: dict[str, Any] | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    key: str = ""

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"finding category {self.category!r} is not one of {CATEGORIES}")
        if len(self.summary) > 140:
            raise ValueError(f"finding summary over 140 characters ({len(self.summary)}): {self.summary!r}")
        object.__setattr__(self, "implicated", tuple(sorted(self.implicated)))

    @property
    def fingerprint(self) -> str:
        """Stable 16-hex id from rule, patient, implicated lines and key."""
        basis = "\x1f".join([self.rule, self.patient or "", *self.implicated, self.key])
        return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """The finding as plain JSON-ready data (the documented output fields)."""
        return {
            "rule": self.rule,
            "category": self.category,
            "severity": self.severity.value,
            "level": self.level,
            "patient": self.patient,
            "implicated": list(self.implicated),
            "summary": self.summary,
            "detail": self.detail,
            "source": {"label": self.source.label, "url": self.source.url, "edition": self.source.edition},
            "suggestion": self.suggestion,
            "evidence": self.evidence,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True, slots=True)
class InputError:
    """A piece of input that could not be read or used, with where it came from."""

    location: str
    message: str
    resource_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"location": self.location, "message": self.message, "resourceType": self.resource_type}


@dataclass(slots=True)
class InputCounts:
    """Accounting of the input: ``resources == checked + ignored + rejected`` always holds."""

    files: int = 0
    resources: int = 0
    checked: int = 0
    ignored: int = 0
    rejected: int = 0

    def add(self, other: InputCounts) -> None:
        self.files += other.files
        self.resources += other.resources
        self.checked += other.checked
        self.ignored += other.ignored
        self.rejected += other.rejected

    def balanced(self) -> bool:
        return self.resources == self.checked + self.ignored + self.rejected

    def to_dict(self) -> dict[str, int]:
        return {
            "files": self.files,
            "resources": self.resources,
            "checked": self.checked,
            "ignored": self.ignored,
            "rejected": self.rejected,
        }


@dataclass(frozen=True, slots=True)
class ReferentialInfo:
    """One referential the run used, as cited in outputs."""

    id: str
    title: str
    edition: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "edition": self.edition, "sha256": self.sha256}


def add_savings(totals: dict[str, dict[str, dict[str, Fraction]]], findings: Iterable[Finding]) -> None:
    """Add the yearly savings of ``findings`` to ``totals`` (axis → key → currency → exact amount)."""
    for f in findings:
        saving = (f.suggestion or {}).get("saving")
        if not saving or saving.get("amount") is None:
            continue
        amount = Fraction(float(saving.get("per_year", saving["amount"])))
        cur = str(saving.get("currency", ""))
        subst = str(f.evidence.get("substance", "")) or "?"
        for axis, key in (("total", ""), ("by_rule", f.rule), ("by_substance", subst)):
            cell = totals.setdefault(axis, {}).setdefault(key, {})
            cell[cur] = cell.get(cur, Fraction(0)) + amount


def savings_dict(totals: dict[str, dict[str, dict[str, Fraction]]]) -> dict[str, Any]:
    """The report's savings section from exact totals (see :func:`add_savings`)."""
    def rnd(d: dict[str, Fraction]) -> dict[str, float]:
        return {k: round(float(v), 2) for k, v in d.items()}

    return {
        "period": "year",
        "total": rnd(totals.get("total", {}).get("", {})),
        "by_rule": {k: rnd(v) for k, v in sorted(totals.get("by_rule", {}).items())},
        "by_substance": {k: rnd(v) for k, v in sorted(totals.get("by_substance", {}).items())},
    }


def savings_table(findings: Iterable[Finding]) -> dict[str, Any]:
    """Potential savings of ``findings`` totalled by currency, by rule and by substance."""
    totals: dict[str, dict[str, dict[str, Fraction]]] = {}
    add_savings(totals, findings)
    return savings_dict(totals)


@dataclass(slots=True)
class Report:
    """The result of a check: findings, input errors and accounting. Pure data."""

    checker_name: str
    checker_version: str
    referentials: tuple[ReferentialInfo, ...]
    as_of: str  # ISO date the run treated as "today"
    jurisdiction: str
    inputs: InputCounts
    findings: list[Finding]
    errors: list[InputError]
    lang: str = "fr"
    resource_urls: dict[str, str] = field(default_factory=dict)
    """``Type/id`` -> the Bundle ``fullUrl`` the input gave that resource, so that outputs can point
    where the input lives (FHIR outputs use it for ``implicated`` and evidence references)."""

    def sorted_findings(self) -> list[Finding]:
        """Findings by patient, most severe first, then rule and fingerprint (deterministic)."""
        return sorted(
            self.findings,
            key=lambda f: (f.patient or "~", -f.severity.rank, f.rule, f.implicated, f.fingerprint),
        )

    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def savings(self) -> dict[str, Any]:
        """Potential savings totalled by currency, by rule and by substance (exact sums, rounded
        at the end: the totals do not depend on the order of the findings)."""
        return savings_table(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checker": {
                "name": self.checker_name,
                "version": self.checker_version,
                "referentials": [r.to_dict() for r in self.referentials],
                "jurisdiction": self.jurisdiction,
            },
            "as_of": self.as_of,
            "inputs": self.inputs.to_dict(),
            "findings": [f.to_dict() for f in self.sorted_findings()],
            "errors": [e.to_dict() for e in self.errors],
            "savings": self.savings(),
        }
