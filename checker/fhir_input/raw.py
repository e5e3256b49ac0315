"""Raw resources: one parsed resource with where it came from, as the walkers yield it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from checker.model import SourceLocation

MEDICATION_USE_TYPES = frozenset({"MedicationDispense", "MedicationAdministration", "MedicationStatement"})
"""Records of a drug the patient takes: they join interaction/duplicate checks, not judged as orders."""


USED_TYPES = frozenset(
    {"MedicationRequest", "ServiceRequest", "Medication", "Patient", "Condition", "AllergyIntolerance", "Observation"}
) | MEDICATION_USE_TYPES
"""Resource types the checker uses; any other type is counted as ignored."""


LOCAL_REF = "\x1f"
"""Joins a file name and a local ``#id`` patient reference in a patient key (file, unit separator,
``#id``): the same ``#id`` in two files names two patients."""

UNNAMED = "\x1e"
"""Starts the grouping key of the resources of one file that name no patient (see :func:`unnamed_patient`)."""


def unnamed_patient(file: str) -> str:
    """The grouping key of the resources of ``file`` that name no patient: one record per file. Two
    files without a patient (two prescriptions exported one per file) may concern two people, so
    their lines are never paired; the lines of one file (a prescription Bundle) stay together."""
    return f"{UNNAMED}{file}"


@dataclass(slots=True)
class RawResource:
    """One parsed resource with where it came from and its Bundle ``fullUrl`` if any."""

    resource: dict[str, Any]
    location: SourceLocation
    full_url: str = ""
    draft: bool = False  # a CDS Hooks draft order
    default_patient: str = ""  # CDS Hooks context.patientId, for drafts without a subject
    resource_type: str = field(init=False)
    json_native: bool = True
    name: str = ""  # set by assembly for a resource with neither id nor fullUrl (see :func:`_resource_ref`)
    """Made of JSON types only (parsed from text, or dumped from a model): identical elements may
    then share one extraction (see :func:`_shared_element`). False for a caller's dict, which may
    hold tuples, dates or NaN that serialise like other values."""

    def __post_init__(self) -> None:
        rt = self.resource.get("resourceType")
        self.resource_type = rt if isinstance(rt, str) else ""

    def patient_key(self) -> str | None:
        """The patient reference this resource belongs to, as written (for sharding by patient).

        In a CDS Hooks request every resource concerns ``context.patientId`` (the spec's prefetch
        templates are all parameterised by it), whatever its own subject says.
        """
        if self.default_patient:
            return self.default_patient
        if self.resource_type == "Patient":
            rid = self.resource.get("id")
            return f"Patient/{rid}" if isinstance(rid, str) else (self.full_url or None)
        for name in ("subject", "patient"):
            ref = self.resource.get(name)
            if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
                return written_patient(ref["reference"], self.location.file)
        return self.default_patient or None


def written_patient(written: str, file: str) -> str:
    """A patient reference as written, keyed for grouping: a local ``#id`` is tied to its ``file``
    (see :data:`LOCAL_REF`), a URL-encoded conditional reference decoded."""
    if written.startswith("#"):  # a local "#id": only means something inside its own file
        return f"{file}{LOCAL_REF}{written}"
    return unquote(written) if "?" in written and "%" in written else written


@dataclass(slots=True)
class TypedResource:
    """An NDJSON line decoded into a typed structure (see :mod:`checker.fhir_input.typed`) instead
    of a dict: assembly extracts it directly, or, when the typed extraction cannot be sure to give
    what the dict would, reads ``line`` as any other line (then nothing differs)."""

    typed: Any
    line: bytes
    location: SourceLocation
    reader: Callable[[bytes], RawResource | Any] | None = None
    """How ``line`` is read as a dict when it is not an NDJSON line of the input (an audit shard's
    line: :func:`checker.audit.codec.decode`); ``None``: as an NDJSON line."""


@dataclass(slots=True)
class TypedLines:
    """NDJSON lines of one file, in input order, each decoded into a typed structure as
    :class:`TypedResource` holds one (see :func:`checker.fhir_input.typed.decode_run`): one item per
    run of a block instead of one per line. Assembly reads each line as it would read a
    :class:`TypedResource` of it. Numbered ``first``, ``first + 1`` … (consecutive lines of a block),
    or ``numbers`` when given (the lines of an audit shard's chunk, which skip other patients' lines)."""

    typed: list[Any]
    lines: list[bytes]
    file: str
    first: int
    numbers: list[int] | None = None

    def line_numbers(self) -> Iterable[int]:
        """The line number of each line, in order."""
        return self.numbers if self.numbers is not None else range(self.first, self.first + len(self.lines))


@dataclass(slots=True)
class NdjsonLines:
    """NDJSON lines not parsed yet (``iter_raw(..., lines=True)``): the lines of a block of one file,
    numbered ``first``, ``first + 1`` …, blank ones included (to be skipped by the reader). One item
    per block rather than per line: the partition routes a block's lines in one loop."""

    lines: list[bytes]
    where: str
    first: int


@dataclass(slots=True)
class FileMark:
    """Marks that a file (or stdin) was opened, for the ``files`` count."""

    name: str
