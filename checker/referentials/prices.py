"""Loader of the Moroccan price referential: the CNOPS reference list of medicines (2014).

The shipped file is the upstream CSV (header, latin-1, dot decimals) gzip'd unchanged. Upstream
conversion artefacts are handled here: the reimbursement rate arrives as a fraction (``0.70``)
and a missing hospital price (PH) as ``0.00``. Every row is validated; a malformed row raises
:class:`~checker.referentials.ReferentialError` naming ``file:line``.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

from checker.referentials import ManifestEntry, ReferentialError, loader

CNOPS_ID = "cnops-2014"
_COLUMNS = ("CODE", "NOM", "DCI1", "DOSAGE1", "UNITE_DOSAGE1", "FORME", "PRESENTATION", "PPV", "PH", "PRIX_BR",
            "PRINCEPS_GENERIQUE", "TAUX_REMBOURSEMENT")


@dataclass(frozen=True, slots=True)
class CnopsRow:
    """One CNOPS presentation (prices in MAD)."""

    line: int
    code: str  # EAN13
    name: str
    dci: str  # as published, ``/``-separated for combinations
    strength: str  # as published: ``20`` or ``10 / 10``
    strength_unit: str  # ``MG``, ``µG``, ``MG / MG`` …
    form: str
    presentation: str
    ppv: float | None  # prix public de vente (None where the upstream conversion left 0.00: no public price)
    ph: float | None  # prix hospitalier (None where the upstream conversion left 0.00)
    prix_br: float | None  # base de remboursement (None where left 0.00)
    generic: bool  # PRINCEPS_GENERIQUE == "G"
    reimbursement_rate: float  # fraction, 0 when not reimbursed


@dataclass(slots=True)
class CnopsList:
    """The CNOPS list with the edition it comes from."""

    rows: tuple[CnopsRow, ...]
    edition: str
    source: str


def _float(value: str, where: str, column: str) -> float:
    try:
        return float(value.strip())
    except ValueError:
        raise ReferentialError(
            f"{where}: column {column}: expected a number with a dot decimal, got {value!r}") from None


def parse_cnops(data: bytes, source: str) -> tuple[CnopsRow, ...]:
    """Parse the CNOPS CSV bytes (latin-1); errors name ``source:line``."""
    text = data.decode("latin-1")
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ReferentialError(f"{source}:1: empty CNOPS file") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    if tuple(header) != _COLUMNS:
        raise ReferentialError(f"{source}:1: unexpected CNOPS header {header!r} (expected {list(_COLUMNS)})")
    rows: list[CnopsRow] = []
    for n, rec in enumerate(reader, start=2):
        if not rec or not any(x.strip() for x in rec):
            continue
        where = f"{source}:{n}"
        if len(rec) != len(_COLUMNS):
            raise ReferentialError(f"{where}: expected {len(_COLUMNS)} columns, found {len(rec)}")
        d = dict(zip(_COLUMNS, (x.strip() for x in rec)))
        if not (d["CODE"].isdigit() and len(d["CODE"]) == 13):
            raise ReferentialError(f"{where}: column CODE: expected 13 digits (EAN13), got {d['CODE']!r}")
        if d["PRINCEPS_GENERIQUE"] not in ("P", "G"):
            raise ReferentialError(
                f"{where}: column PRINCEPS_GENERIQUE: expected P or G, got {d['PRINCEPS_GENERIQUE']!r}")
        rate = _float(d["TAUX_REMBOURSEMENT"], where, "TAUX_REMBOURSEMENT")
        if rate > 1:  # a percentage left as such
            rate /= 100
        if not 0 <= rate <= 1:
            raise ReferentialError(f"{where}: column TAUX_REMBOURSEMENT: {rate} is not a rate")
        # A missing price arrives as 0.00 in every price column (e.g. hospital-only REVLIMID has PPV 0.00):
        # read as unknown, never as free.
        ppv, ph, prix_br = (_float(d[c], where, c) or None for c in ("PPV", "PH", "PRIX_BR"))
        rows.append(CnopsRow(
            line=n, code=d["CODE"], name=d["NOM"], dci=d["DCI1"], strength=d["DOSAGE1"],
            strength_unit=d["UNITE_DOSAGE1"], form=d["FORME"], presentation=d["PRESENTATION"],
            ppv=ppv, ph=ph, prix_br=prix_br,
            generic=d["PRINCEPS_GENERIQUE"] == "G", reimbursement_rate=rate,
        ))
    return tuple(rows)


@loader(CNOPS_ID)
def load_cnops(entry: ManifestEntry, root: Path) -> CnopsList:
    """Read the shipped CNOPS list (gzip'd CSV)."""
    path = entry.paths(root)[0]
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return CnopsList(parse_cnops(raw, str(path)), entry.edition, str(path))
