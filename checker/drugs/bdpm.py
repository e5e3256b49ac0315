"""BDPM import: read the official *Base de données publique des médicaments* files.

The official download (https://base-donnees-publique.medicaments.gouv.fr/telechargement.php) is a
set of tab-separated text files without header, in cp1252 (mirrors re-encode them in UTF-8), with
decimal commas and DD/MM/YYYY dates. :func:`read_table` parses one file with a strict per-table
schema and collects every malformed line as ``file:line: message`` (:class:`BdpmImportError`);
:func:`update_snapshot` imports a whole download into ``referentials/bdpm/`` as sorted, gzip'd
UTF-8 files (reproducible byte for byte) and refreshes the manifest (checker.referentials.manifest).

Blank lines (the official CIS_CPD file carries stray carriage-return-only lines) hold no data: they
are skipped and counted in :class:`ImportSummary.blank_lines`, never silently.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from checker.referentials import manifest, referentials_dir


class BdpmImportError(Exception):
    """One or more BDPM lines are malformed; ``errors`` lists them as ``file:line: message``."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        shown = "\n".join(errors[:50])
        more = f"\n… and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} malformed BDPM line(s):\n{shown}{more}")


Check = Callable[[str], str | None]  # returns an error message or None


def _digits(n: int, optional: bool = False) -> Check:
    pat = re.compile(rf"^\d{{{n}}}$")

    def check(v: str) -> str | None:
        if optional and v == "":
            return None
        return None if pat.match(v) else f"expected {n} digits, got {v!r}"

    return check


def _date(optional: bool = True) -> Check:
    def check(v: str) -> str | None:
        if v == "" and optional:
            return None
        try:
            parse_date(v)
        except ValueError:
            return f"expected a DD/MM/YYYY date, got {v!r}"
        return None

    return check


def _price(v: str) -> str | None:
    if v == "":
        return None
    try:
        parse_price(v)
    except ValueError:
        return f"expected a price with decimal comma, got {v!r}"
    return None


def _one_of(*values: str) -> Check:
    def check(v: str) -> str | None:
        return None if v in values else f"expected one of {', '.join(values)}, got {v!r}"

    return check


def _nonempty(v: str) -> str | None:
    return None if v.strip() else "empty value"


def _any(v: str) -> str | None:
    return None


@dataclass(frozen=True)
class TableSpec:
    """Schema of one BDPM file: column names and a check per column."""

    name: str  # file stem, e.g. "CIS_bdpm"
    columns: tuple[str, ...]
    checks: tuple[Check, ...]
    required: bool = True
    min_columns: int | None = None  # trailing columns the publisher sometimes omits

    def __post_init__(self) -> None:
        assert len(self.columns) == len(self.checks)


TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "CIS_bdpm",
        ("cis", "name", "form", "routes", "amm_status", "procedure", "marketing", "amm_date", "bdm_status",
         "eu_number", "holders", "enhanced_monitoring"),
        (_digits(8), _nonempty, _any, _any, _any, _any, _any, _date(), _any, _any, _any, _any),
    ),
    TableSpec(
        "CIS_CIP_bdpm",
        ("cis", "cip7", "label", "admin_status", "marketing", "marketing_date", "cip13", "collectivities",
         "reimbursement_rate", "price", "price_with_fees", "fees", "reimbursement_text"),
        (_digits(8), _digits(7), _nonempty, _any, _any, _date(), _digits(13), _any, _any, _price, _price, _price,
         _any),
        min_columns=12,
    ),
    TableSpec(
        "CIS_COMPO_bdpm",
        ("cis", "element", "substance_code", "substance", "strength", "strength_ref", "nature", "link"),
        (_digits(8), _any, _digits(5, optional=True), _nonempty, _any, _any, _one_of("SA", "FT"), _any),
    ),
    TableSpec(
        "CIS_GENER_bdpm",
        ("group", "group_label", "cis", "type", "sort"),
        (_nonempty, _nonempty, _digits(8), _one_of("0", "1", "2", "4"), _any),
    ),
    TableSpec("CIS_CPD_bdpm", ("cis", "condition"), (_digits(8), _nonempty)),
    TableSpec("CIS_MITM", ("cis", "atc", "name", "url"), (_digits(8), _nonempty, _any, _any), min_columns=2),
    TableSpec(
        "CIS_CIP_Dispo_Spec",
        ("cis", "cip13", "status_code", "status", "start", "updated", "back", "url"),
        (_digits(8), _digits(13, optional=True), _one_of("1", "2", "3", "4"), _any, _date(), _date(), _date(),
         _any),
        min_columns=7,
    ),
    TableSpec("CIS_HAS_SMR_bdpm", ("cis", "has_file", "reason", "date", "value", "text"),
              (_digits(8), _any, _any, _any, _any, _any), required=False),
    TableSpec("CIS_HAS_ASMR_bdpm", ("cis", "has_file", "reason", "date", "value", "text"),
              (_digits(8), _any, _any, _any, _any, _any), required=False),
)
TABLE_BY_NAME = {t.name: t for t in TABLES}
SNAPSHOT_TABLES = tuple(t.name for t in TABLES if t.required)  # HAS files are not shipped


def parse_date(value: str) -> date:
    """``DD/MM/YYYY`` → :class:`date` (ValueError otherwise)."""
    d, m, y = value.strip().split("/")
    return date(int(y), int(m), int(d))


def parse_price(value: str) -> float:
    """BDPM price text → euros. The last comma is the decimal mark; earlier ones group thousands
    (``"1,195,27"`` → 1195.27)."""
    v = value.strip().replace(" ", "").replace("\u00a0", "")
    if not re.fullmatch(r"\d{1,3}(,\d{3})*,\d{1,2}|\d+(,\d{1,2})?|\d+\.\d{1,2}", v):
        raise ValueError(value)
    if "," in v:
        whole, _, dec = v.rpartition(",")
        return float(whole.replace(",", "") + "." + dec)
    return float(v)


def decode(raw: bytes) -> str:
    """BDPM bytes → text: UTF-8 (with or without BOM) when valid, else the official cp1252."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


@dataclass(slots=True)
class Table:
    """The validated rows of one file (each row a tuple of stripped strings, one per column)."""

    spec: TableSpec
    rows: list[tuple[str, ...]]
    blank_lines: int = 0
    source: str = ""


def split_lines(text: str) -> Iterator[tuple[int, str]]:
    """Numbered physical lines (LF, CRLF or stray CRs all end a line only at LF)."""
    for n, line in enumerate(text.split("\n"), start=1):
        yield n, line.rstrip("\r")


def read_table(path: Path, spec: TableSpec, errors: list[str]) -> Table:
    """Parse one BDPM file; malformed lines are appended to ``errors`` as ``file:line: message``."""
    text = decode(_read_bytes(path))
    rows: list[tuple[str, ...]] = []
    blanks = 0
    ncol = len(spec.columns)
    lines = list(split_lines(text))
    if lines and lines[-1][1] == "":
        lines.pop()  # final newline
    for n, line in lines:
        if not line.strip():
            blanks += 1
            continue
        parts = [p.strip().replace("\r", " ") for p in line.split("\t")]
        # Trailing empty columns beyond the schema are tolerated (some publishers end lines with a tab).
        while len(parts) > ncol and parts[-1] == "":
            parts.pop()
        lo = spec.min_columns or ncol
        if not lo <= len(parts) <= ncol:
            errors.append(f"{path}:{n}: expected {ncol} tab-separated columns, found {len(parts)}")
            continue
        parts += [""] * (ncol - len(parts))
        bad = [f"{col}: {msg}" for col, chk, v in zip(spec.columns, spec.checks, parts) if (msg := chk(v))]
        if bad:
            errors.append(f"{path}:{n}: " + "; ".join(bad))
            continue
        rows.append(tuple(parts))
    return Table(spec, rows, blanks, str(path))


def find_file(src_dir: Path, stem: str) -> Path | None:
    """The file of table ``stem`` in a download folder (``.txt``, ``.txt.gz`` or ``.tsv.gz``)."""
    for suffix in (".txt", ".txt.gz", ".tsv.gz", ".tsv"):
        p = src_dir / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def read_download(src_dir: Path, tables: tuple[str, ...] = SNAPSHOT_TABLES) -> tuple[dict[str, Table], list[str]]:
    """Read every table of a BDPM download; raises :class:`BdpmImportError` listing all bad lines."""
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise FileNotFoundError(f"{src_dir}: not a directory")
    errors: list[str] = []
    out: dict[str, Table] = {}
    for name in tables:
        spec = TABLE_BY_NAME[name]
        path = find_file(src_dir, name)
        if path is None:
            if spec.required:
                errors.append(f"{src_dir / (name + '.txt')}: required BDPM file is missing")
            continue
        out[name] = read_table(path, spec, errors)
    if errors:
        raise BdpmImportError(errors)
    return out, errors


def snapshot_bytes(table: Table) -> bytes:
    """The shipped form of a table: sorted UTF-8 lines, LF, gzip with mtime 0 (reproducible)."""
    lines = sorted(set("\t".join(r) for r in table.rows))
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(payload)
    return buf.getvalue()


@dataclass(slots=True)
class ImportSummary:
    """What :func:`update_snapshot` did."""

    files: dict[str, int] = field(default_factory=dict)  # table → rows written
    blank_lines: int = 0
    duplicates: int = 0
    written: list[Path] = field(default_factory=list)
    edition: str = ""

    def __str__(self) -> str:
        parts = ", ".join(f"{k}: {v} rows" for k, v in sorted(self.files.items()))
        return (f"BDPM snapshot {self.edition}: {parts}; {self.blank_lines} blank line(s) skipped, "
                f"{self.duplicates} duplicate line(s) merged")


BDPM_ENTRY = {
    "id": "bdpm",
    "title": "Base de données publique des médicaments (BDPM)",
    "publisher": "ANSM, HAS, UNCAM (ministère chargé de la santé)",
    "licence": "Licence Ouverte / Etalab 2.0 — réutilisation libre avec mention de la source",
    "url": "https://base-donnees-publique.medicaments.gouv.fr/telechargement.php",
    "notes": ("Official download re-encoded in UTF-8, lines sorted, gzip (mtime 0). Tables: CIS_bdpm "
              "(specialties), CIS_CIP_bdpm (presentations, prices, reimbursement), CIS_COMPO_bdpm "
              "(composition), CIS_GENER_bdpm (répertoire des génériques), CIS_CPD_bdpm (prescribing "
              "conditions), CIS_MITM (ATC of major-interest drugs), CIS_CIP_Dispo_Spec (shortages). "
              "HAS SMR/ASMR files not shipped. Refresh: pertinence referentials update --bdpm DIR."),
}


def _edition(tables: dict[str, Table], src_dir: Path) -> str:
    """Edition label: the latest shortage update date (the freshest dated table), else 'unknown'."""
    meta = src_dir / "meta.json.from-repo"
    latest: date | None = None
    disp = tables.get("CIS_CIP_Dispo_Spec")
    if disp:
        for r in disp.rows:
            for v in (r[5],):
                if v:
                    d = parse_date(v)
                    latest = d if latest is None or d > latest else latest
    if latest is None and meta.is_file():
        return "unknown"
    return latest.strftime("%Y-%m") if latest else "unknown"


def update_snapshot(src_dir: Path, root: Path | None = None) -> ImportSummary:
    """Import a BDPM download from ``src_dir`` into ``<root>/bdpm/`` and update the manifest.

    Every required table must parse cleanly (else :class:`BdpmImportError`, nothing is written).
    Output is deterministic: the same download always yields the same bytes.
    """

    root = Path(root) if root is not None else referentials_dir()
    src_dir = Path(src_dir)
    tables, _ = read_download(src_dir)
    summary = ImportSummary(edition=_edition(tables, src_dir))
    out_dir = root / "bdpm"
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[dict[str, str]] = []
    for name in SNAPSHOT_TABLES:
        t = tables[name]
        data = snapshot_bytes(t)
        path = out_dir / f"{name}.tsv.gz"
        _write_if_changed(path, data)
        summary.files[name] = len(set(t.rows))
        summary.duplicates += len(t.rows) - len(set(t.rows))
        summary.blank_lines += t.blank_lines
        summary.written.append(path)
        files.append({"path": f"bdpm/{name}.tsv.gz"})
    listing = manifest.read(root)
    manifest.set_entry(listing, dict(BDPM_ENTRY, edition=summary.edition, files=files))
    listing, _ = manifest.refresh(root, listing)
    manifest.write(root, listing)
    return summary


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def load_snapshot(directory: Path, tables: tuple[str, ...] = SNAPSHOT_TABLES) -> dict[str, Table]:
    """Read the shipped snapshot (same strict parser as the import)."""
    tables_, _ = read_download(directory, tables)
    return tables_
