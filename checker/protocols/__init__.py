"""HAS-style protocols: XML decision graphs (``referentials/protocols/*.xml``) and their engine.

* :mod:`checker.protocols.language` parses and validates protocol files (XSD + graph checks,
  errors as ``file:line: message``);
* :mod:`checker.protocols.engine` evaluates a protocol for one order of one patient.
* ``tools/refresh_manifest.py`` (maintainers) refreshes the checksums of the referential manifest.

The loaded set is the referential ``protocols`` (``refs.get("protocols")`` →
:class:`ProtocolSet`), whose loader is registered here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from checker.protocols.engine import Evaluation, applicable, evaluate, evaluate_all, evaluate_record
from checker.protocols.language import Protocol, ProtocolError, parse_file, validate_files
from checker.referentials import ManifestEntry, ReferentialError, loader

__all__ = [
    "Evaluation",
    "Protocol",
    "ProtocolError",
    "ProtocolSet",
    "applicable",
    "evaluate",
    "evaluate_all",
    "evaluate_record",
    "load_protocols",
    "parse_file",
    "validate_files",
]


@dataclass(frozen=True)
class ProtocolSet:
    """Every shipped protocol, by id, in file order."""

    protocols: tuple[Protocol, ...]

    def get(self, protocol_id: str) -> Protocol:
        for p in self.protocols:
            if p.id == protocol_id:
                return p
        raise KeyError(f"no protocol {protocol_id!r}")

    def services(self) -> tuple[Protocol, ...]:
        """Imaging, biology and transport protocols (they apply to ServiceRequests)."""
        return self._services

    def medications(self) -> tuple[Protocol, ...]:
        """Medication protocols (they apply to MedicationRequests)."""
        return self._medications

    # Built once: the engine memoises per protocol tuple (by identity).
    @functools.cached_property
    def _services(self) -> tuple[Protocol, ...]:
        return tuple(p for p in self.protocols if p.applies_to_services)

    @functools.cached_property
    def _medications(self) -> tuple[Protocol, ...]:
        return tuple(p for p in self.protocols if p.kind == "medication")


def load_protocols(paths: list[Path], *, schema: Path | None = None) -> ProtocolSet:
    """Parse and validate every file; all problems of all files are raised together."""
    problems: list[str] = []
    out: list[Protocol] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            proto = parse_file(path, schema=schema)
        except ProtocolError as exc:
            problems.extend(exc.problems)
            continue
        if proto.id in seen:
            problems.append(f"{path}:1: protocol id {proto.id!r} already used by {seen[proto.id]}")
            continue
        seen[proto.id] = str(path)
        out.append(proto)
    if problems:
        raise ProtocolError(problems)
    return ProtocolSet(tuple(out))


@loader("protocols")
def load(entry: ManifestEntry, root: Path) -> ProtocolSet:
    """Validate (XSD + decision graphs) and load the protocols listed in the manifest entry;
    errors name file:line."""
    files = [root / p for p, _ in entry.files if p.endswith(".xml")]
    schema = next((root / p for p, _ in entry.files if p.endswith(".xsd")), None)
    if schema is None:
        raise ReferentialError(f"{root / 'MANIFEST.json'}: the 'protocols' entry must list the protocol XSD")
    try:
        return load_protocols(files, schema=schema)
    except ProtocolError as exc:
        raise ReferentialError("invalid protocol file(s):\n" + "\n".join(exc.problems)) from None
