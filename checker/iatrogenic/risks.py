"""Iatrogenic rule data: duplicate classes, patient-specific risks and the STOPP v2 subset.

Loaded from ``referentials/iatrogenic/patient-risks.tsv`` (hand-encoded, one source per row) and
``referentials/iatrogenic/stopp-v2-subset.json`` (built by ``tools/build_stopp.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from checker.criteria import CriteriaError, Local, RowCriteria, Verdict, from_risk_row
from checker import facts
from checker.facts import FactTables, Indication
from checker.findings import Severity, Source
from checker.iatrogenic.conditions import LineReading
from checker.memo import MAX_ENTRIES, by_identities
from checker.model import Concept, MedicationIdentity, MedicationOrder, PatientRecord
from checker.referentials import ManifestEntry, ReferentialError, loader
from checker.text import fold

KINDS = {"duplicate-class", "same-substance", "elderly", "pregnancy", "max-dose", "renal", "allergy-class",
         "accumulation"}
COLUMNS = ["kind", "id", "match", "params", "severity", "label_fr", "label_en", "source_label", "source_url",
           "source_edition"]


@dataclass(frozen=True, slots=True)
class RiskRow:
    """One row of ``patient-risks.tsv``."""

    kind: str
    id: str
    atc: tuple[str, ...]
    keys: tuple[str, ...]
    allergens: tuple[str, ...]
    thesaurus_class: str
    params: dict[str, Any]
    severity: Severity
    label_fr: str
    label_en: str
    source: Source
    line: int
    criteria: RowCriteria = field(default_factory=RowCriteria)
    """The row's conditions (``params``) in the criteria language."""

    def label(self, lang: str) -> str:
        return self.label_en if lang == "en" else self.label_fr

    def matches_order(self, order: MedicationOrder) -> list[str]:
        """Substance keys of the line this row concerns (by ATC prefix or substance key)."""
        ident = order.identity
        if ident is None:
            return []
        return list(_row_keys(self, ident))


@by_identities  # the row lists and identities never change once built
def _rows_matching(rows: list[RiskRow], ident: MedicationIdentity) -> tuple[tuple[RiskRow, tuple[str, ...]], ...]:
    """:func:`_rows_matching_plain` asked only of the rows that can concern one of the medication's
    substances (:func:`_row_index`): a CDS request's lines bring new medications, each asked of
    every kind of row."""
    index = _ROW_INDEX.get(id(rows))
    if index is None:  # built once per list of rows (the list is kept with it; emptied when full)
        if len(_ROW_INDEX) >= MAX_ENTRIES:
            _ROW_INDEX.clear()
        index = _ROW_INDEX[id(rows)] = (rows, _row_index(rows))
    always, by_key, longer = index[1]
    if not by_key:  # rows by ATC code or for any substance only: every row is asked
        return tuple((row, keys) for row in rows if (keys := row_matches(row, ident)))
    at: set[int] = set(always)
    for s in ident.substances:
        f = fold(s.key)
        at.update(by_key.get(f, ()))
        at.update(longer.get(f, ()))
        for i, ch in enumerate(f):
            if ch == " ":
                at.update(by_key.get(f[:i], ()))
    return tuple((row, keys) for row in (rows[i] for i in sorted(at)) if (keys := row_matches(row, ident)))


rows_matching = _rows_matching
""":meth:`IatrogenicRules.matching` of an identified medication among ``rows`` (the rows of one kind,
from :meth:`IatrogenicRules.kind`), for a rule asking it of every line."""


def _rows_matching_plain(rows: list[RiskRow], ident: MedicationIdentity) -> tuple[tuple[RiskRow, tuple[str, ...]], ...]:
    """The rows concerning the medication, each with its substance keys the row names, in row order."""
    return tuple((row, keys) for row in rows if (keys := row_matches(row, ident)))


_ROW_INDEX: dict[int, tuple[list[RiskRow], tuple[tuple[int, ...], dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]]] = {}


def _row_index(rows: list[RiskRow]) -> tuple[tuple[int, ...], dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Where :func:`row_matches` can say yes, by row position: rows with ATC prefixes or ``*`` (always
    asked); rows by each folded key (a substance folded alike, or with a salt word after it, see
    :func:`key_matches`); rows by each word-prefix of a folded key (a substance folded as the moiety
    of a key with a salt word)."""
    always: list[int] = []
    by_key: dict[str, list[int]] = {}
    longer: dict[str, list[int]] = {}
    for pos, row in enumerate(rows):
        if row.atc or "*" in row.keys:
            always.append(pos)
            continue
        for k in row.keys:
            g = fold(k)
            by_key.setdefault(g, []).append(pos)
            for i, ch in enumerate(g):
                if ch == " ":
                    longer.setdefault(g[:i], []).append(pos)
    return (tuple(always), {k: tuple(v) for k, v in by_key.items()}, {k: tuple(v) for k, v in longer.items()})


@by_identities
def _keys_by_row(rows: list[RiskRow], ident: MedicationIdentity) -> dict[int, tuple[str, ...]]:
    return {id(row): keys for row, keys in _rows_matching(rows, ident)}


def row_matches(row: RiskRow, ident: MedicationIdentity) -> tuple[str, ...]:
    """Substance keys of ``ident`` that ``row`` concerns."""
    out = []
    for s in ident.substances:
        if row.atc and any(a.startswith(p) for a in s.atc for p in row.atc):
            out.append(s.key)
        elif row.keys and ("*" in row.keys or any(key_matches(s.key, k) for k in row.keys)):
            out.append(s.key)
    return tuple(out)


_row_keys = by_identities(row_matches)
""":func:`row_matches` remembered per row and identified medication (asked for every line, by
several rules, of the few medications a bulk export names)."""


def key_matches(key: str, wanted: str) -> bool:
    """Same substance key, allowing a salt/ester word after the moiety ("loflazepate d ethyle")."""
    a, b = fold(key), fold(wanted)
    return a == b or a.startswith(b + " ") or b.startswith(a + " ")


@dataclass(frozen=True, slots=True)
class LineContext(LineReading):
    """One prescription line (substance ``key``) of a patient judged on ``day``: the context in which a
    row's criteria are evaluated (:func:`checker.criteria.evaluate`)."""

    record: PatientRecord
    day: date
    tables: FactTables | None
    line: MedicationOrder
    key: str
    aspirin_bands: tuple[dict[str, Any], ...] = ()

    def reasons(self) -> tuple[Concept, ...]:
        return tuple(self.line.reasons)

    def indications(self) -> list[Indication]:
        return facts.indications(self.record, self.line, self.day, self.tables)

    def lines(self) -> tuple[tuple[str, MedicationOrder], ...]:
        return ((self.key, self.line),)

    def nodes_for(self, key: str) -> frozenset[str]:
        return frozenset()

    def closure(self, key: str) -> frozenset[str]:
        return frozenset({key})

    def local(self, node: Local) -> Verdict:
        raise CriteriaError(f"a patient-risk row has no {node.kind!r} leaf")


@dataclass(slots=True)
class IatrogenicRules:
    """All rows by kind, and the STOPP subset."""

    rows: list[RiskRow]
    stopp: dict[str, Any]
    stopp_source: Source
    selection: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    """``stopp-selection.json``: family (``elderly``, ``renal``) → STOPP criterion → wording by language."""
    aspirin_bands: tuple[dict[str, Any], ...] = ()
    """``aspirin-dose-bands.json``: the thesaurus' aspirin dose bands, first match wins."""
    by_kind: dict[str, list[RiskRow]] = field(default_factory=dict)
    drug_iterations: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for r in self.rows:
            self.by_kind.setdefault(r.kind, []).append(r)

    def kind(self, kind: str) -> list[RiskRow]:
        return self.by_kind.get(kind, [])

    def matching(self, kind: str, order: MedicationOrder) -> tuple[tuple[RiskRow, tuple[str, ...]], ...]:
        """Rows of ``kind`` that concern the line, each with the line's substance keys it matched
        (in row order; memoised per identified medication)."""
        if order.identity is None or kind not in self.by_kind:
            return ()
        return _rows_matching(self.by_kind[kind], order.identity)

    def matching_identity(self, kind: str, ident: MedicationIdentity) -> tuple[tuple[RiskRow, tuple[str, ...]], ...]:
        """:meth:`matching` for an identified medication (the rows depend on nothing else)."""
        return _rows_matching(self.by_kind[kind], ident) if kind in self.by_kind else ()

    def row_keys(self, kind: str, order: MedicationOrder) -> dict[int, tuple[str, ...]]:
        """:meth:`matching` as a look-up: ``id(row)`` → the line's substance keys that row concerns
        (rows concerning none are absent; memoised per identified medication, not to be modified)."""
        if order.identity is None or kind not in self.by_kind:
            return {}
        return _keys_by_row(self.by_kind[kind], order.identity)

    def stopp_atc(self, rule_id: str, iteration: int = 0, medicine: int = 0) -> tuple[str, ...]:
        return tuple(self.stopp["rules"][rule_id]["iterations"][iteration]["medicines"][medicine]["atc"])

    def stopp_selection(self, family: str) -> dict[str, dict[str, str]]:
        """The STOPP criteria of ``family`` the rules evaluate, with their wording (fr/en)."""
        return self.selection.get(family, {})

    def stopp_drug_iterations(self, rule_id: str) -> tuple[dict[str, Any], ...]:
        """The iterations of a STOPP criterion that name drugs only (no eGFR, no CKD stage), each with
        one positive medicine: ``{"atc": [...], "dose": {...} | None}`` (built once per criterion;
        not to be modified)."""
        found = self.drug_iterations.get(rule_id)
        if found is None:
            found = self.drug_iterations[rule_id] = tuple(self._drug_iterations(rule_id))
        return found

    def _drug_iterations(self, rule_id: str) -> list[dict[str, Any]]:
        out = []
        for it in self.stopp["rules"][rule_id]["iterations"]:
            if it.get("egfr") or it.get("ckd_icd10"):
                continue
            meds = [m for m in it["medicines"] if not m.get("negative")]
            if len(meds) == 1 and len(it["medicines"]) == 1:
                out.append({"atc": list(meds[0]["atc"]), "dose": meds[0].get("dose")})
        return out


def load_rows(path: Path) -> list[RiskRow]:
    """Parse the TSV, with errors naming file:line."""
    rows: list[RiskRow] = []
    header: list[str] | None = None
    for n, raw in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not raw.strip() or raw.startswith("#"):
            continue
        cells = raw.split("\t")
        if header is None:
            if cells != COLUMNS:
                raise ValueError(f"{path}:{n}: expected header {COLUMNS}")
            header = cells
            continue
        if len(cells) != len(COLUMNS):
            raise ValueError(f"{path}:{n}: expected {len(COLUMNS)} tab-separated cells, got {len(cells)}")
        d = dict(zip(COLUMNS, cells))
        if d["kind"] not in KINDS:
            raise ValueError(f"{path}:{n}: unknown kind {d['kind']!r}")
        atc: list[str] = []
        keys: list[str] = []
        allergens: list[str] = []
        thesaurus_class = ""
        for part in d["match"].split(";"):
            tag, _, values = part.partition(":")
            items = [v.strip() for v in values.split(",") if v.strip()]
            if tag == "atc":
                atc += items
            elif tag == "key":
                keys += [fold(v) if v != "*" else v for v in items]
            elif tag == "allergen":
                allergens += [fold(v) for v in items]
            elif tag == "thesaurus":
                thesaurus_class = fold(values)
            else:
                raise ValueError(f"{path}:{n}: unknown match tag {tag!r} (atc, key, allergen, thesaurus)")
        try:
            params = json.loads(d["params"])
            severity = Severity.parse(d["severity"])
            row_criteria = from_risk_row(d["kind"], params)
        except (json.JSONDecodeError, ValueError) as exc:
            raise ValueError(f"{path}:{n}: {exc}") from None
        if not d["source_label"] or not d["source_url"]:
            raise ValueError(f"{path}:{n}: every row needs a source label and URL")
        rows.append(RiskRow(d["kind"], d["id"], tuple(atc), tuple(keys), tuple(allergens), thesaurus_class, params,
                            severity, d["label_fr"], d["label_en"],
                            Source(d["source_label"], d["source_url"], d["source_edition"]), n, row_criteria))
    if header is None:
        raise ValueError(f"{path}: empty file")
    return rows


def load(root: Path, files: list[str]) -> IatrogenicRules:
    tsv = next(root / f for f in files if f.endswith(".tsv"))
    js = next(root / f for f in files if f.endswith(".json") and "stopp-v2" in f)
    bands_file = next((root / f for f in files if f.endswith("aspirin-dose-bands.json")), None)
    chosen = next((root / f for f in files if f.endswith("stopp-selection.json")), None)
    rows = load_rows(tsv)
    try:
        stopp = json.loads(js.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{js}:{exc.lineno}: {exc.msg}") from None
    if "rules" not in stopp:
        raise ValueError(f"{js}: missing 'rules'")
    selection: dict[str, dict[str, dict[str, str]]] = {}
    if chosen is not None:
        try:
            raw = json.loads(chosen.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{chosen}:{exc.lineno}: {exc.msg}") from None
        selection = {k: v for k, v in raw.items() if k in ("elderly", "renal")}
        unknown = [rid for family in selection.values() for rid in family if rid not in stopp["rules"]]
        if unknown:
            raise ValueError(f"{chosen}: criteria not in the STOPP subset: {', '.join(unknown)}")
    bands: tuple[dict[str, Any], ...] = ()
    if bands_file is not None:
        try:
            bands = tuple(json.loads(bands_file.read_text(encoding="utf-8"))["bands"])
        except (json.JSONDecodeError, KeyError) as exc:
            raise ValueError(f"{bands_file}: {exc}") from None
    src = stopp.get("source", {})
    return IatrogenicRules(rows, stopp, Source(src.get("label", "STOPP/START v2"), src.get("url", ""),
                                               src.get("edition", "")), selection, bands)


@loader("iatrogenic-rules")
def load_iatrogenic(entry: ManifestEntry, root: Path) -> IatrogenicRules:
    """Duplicate classes, patient-specific risk rows and the STOPP v2 subset (``iatrogenic-rules``)."""
    try:
        return load(root, [p for p, _ in entry.files])
    except ValueError as exc:
        raise ReferentialError(str(exc)) from None
