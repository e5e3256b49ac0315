"""How each substance the interaction thesaurus names is reached by identification.

For every class member and member-less entry of the thesaurus: the drug key its name resolves to,
its ATC codes, French name, English names (INN/RxNorm), BDPM substance codes, and whether the key
is reached back from the name and from each ATC code; or the reasoned exclusion of
``referentials/substances/thesaurus_exclusions.tsv`` (classes without member list, foods,
devices…). ``pertinence referentials coverage`` prints it; tests keep it complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from checker.drugs import drug_index, identifier
from checker.drugs.index import thesaurus_spelling
from checker.referentials import default_referentials
from checker.referentials.drugs import read_tsv, thesaurus_substances
from checker.text import fold

if TYPE_CHECKING:
    from checker.referentials import Referentials


@dataclass(frozen=True)
class CoverageRow:
    thesaurus_name: str
    member: bool  # a class member (else a member-less entry)
    key: str | None
    name: str  # French name as the BDPM spells it
    english: tuple[str, ...]
    atc: tuple[str, ...]
    bdpm_codes: tuple[str, ...]
    by_name: bool  # the printed name identifies the key
    by_atc: bool  # every ATC code identifies the key (False without ATC code)
    excluded: str  # reason, when the entry is not a medicine substance

    @property
    def reached(self) -> bool:
        return bool(self.excluded) or self.by_name


def exclusions(root: Path) -> dict[str, str]:
    """Folded thesaurus name → reason it is not a substance to identify."""
    path = root / "substances" / "thesaurus_exclusions.tsv"
    return {fold(r[0]): r[1] for r in read_tsv(path, 2)} if path.is_file() else {}


def thesaurus_coverage(refs: Referentials | None = None) -> list[CoverageRow]:
    """One row per thesaurus substance name, in alphabetical order."""
    refs = refs or default_referentials()
    idx = drug_index(refs)
    ident = identifier(refs)
    excluded = exclusions(refs.root)
    rows = []
    for printed, member in thesaurus_substances(refs.root, refs.manifest.get("ansm-thesaurus")):
        key = idx.substance_key(thesaurus_spelling(printed))
        sub = idx.substance(key) if key else None
        found = ident.from_text(thesaurus_spelling(printed)) if key else None
        by_name = bool(key) and (idx.substance_key(thesaurus_spelling(printed)) == key or bool(
            found and found.substance_keys == {key} and found.confidence >= 0.85))
        atc = sub.atc if sub else ()
        by_atc = bool(atc) and all(idx.keys_for_atc(a) == (key,) or key in idx.keys_for_atc(a) for a in atc)
        rows.append(CoverageRow(
            thesaurus_name=printed, member=member, key=key, name=sub.name if sub else "",
            english=sub.english if sub else (), atc=atc, bdpm_codes=sub.bdpm_codes if sub else (),
            by_name=by_name, by_atc=by_atc, excluded=excluded.get(fold(printed), ""),
        ))
    return rows


def render_coverage(rows: list[CoverageRow]) -> str:
    """Tab-separated table with a summary line (for ``pertinence referentials coverage``)."""
    out = ["thesaurus name\tkind\tkey\tFrench name\tEnglish\tATC\tBDPM codes\tby name\tby ATC\texcluded"]
    for r in rows:
        out.append("\t".join([
            r.thesaurus_name, "member" if r.member else "entry", r.key or "-", r.name or "-",
            ", ".join(r.english) or "-", ", ".join(r.atc) or "-", ", ".join(r.bdpm_codes) or "-",
            "yes" if r.by_name else "no", "yes" if r.by_atc else "no", r.excluded or "-",
        ]))
    n = len(rows)
    out.append(f"# {n} thesaurus substances: {sum(r.by_name for r in rows)} reached by name, "
               f"{sum(r.by_atc for r in rows)} by ATC, {sum(bool(r.excluded) for r in rows)} excluded (reason given), "
               f"{sum(not r.reached for r in rows)} unreached")
    return "\n".join(out)
