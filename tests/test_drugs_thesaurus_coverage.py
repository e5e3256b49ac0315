"""Every substance the ANSM interaction thesaurus names is reachable (meta-test over the whole thesaurus)."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

from click.testing import CliRunner

from checker.drugs import names as N
from checker.drugs.coverage import thesaurus_coverage
from checker.text import fold


def test_every_thesaurus_substance_is_reached_by_name_or_excluded_with_a_reason() -> None:
    rows = thesaurus_coverage()
    assert len(rows) > 1000
    unreached = [r.thesaurus_name for r in rows if not r.reached]
    assert unreached == []
    named = {fold(r.thesaurus_name) for r in rows}
    from checker.referentials import default_referentials
    from checker.drugs.coverage import exclusions

    stale = set(exclusions(default_referentials().root)) - named
    assert not stale, f"exclusions naming nothing in the thesaurus: {sorted(stale)}"


def test_a_substance_with_atc_codes_is_reached_back_from_each() -> None:
    rows = [r for r in thesaurus_coverage() if r.atc and not r.excluded]
    assert len(rows) > 1000
    assert [r.thesaurus_name for r in rows if not r.by_atc] == []


def test_thesaurus_substances_have_the_atc_code_the_who_index_gives(shared_dir: Path) -> None:
    """Optional corpus check: no reached substance lacks a code the WHO index has under its name."""
    who = shared_dir / "data" / "who-atc-2026-04" / "WHO_ATC-DDD_2026-04-25.csv"
    by_name: set[str] = set()
    with who.open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            words = fold(r["atc_name"]).split()
            if len(r["atc_code"]) == 7 and 0 < len(words) <= 3 and "and" not in words:
                by_name.update(" ".join(c) for c in itertools.product(*[list(N.english_variants(w)) for w in words]))
    lacking = [r.key for r in thesaurus_coverage() if r.key and not r.excluded and not r.atc and r.key in by_name]
    assert lacking == []


def test_coverage_command_prints_the_table() -> None:
    from cli import main

    out = CliRunner().invoke(main, ["referentials", "coverage"])
    assert out.exit_code == 0 and "BUPROPION\tentry\tbupropione" in out.output and " 0 unreached" in out.output


def test_identify_command_shows_product_method_and_refusal() -> None:
    import json

    from cli import main

    out = CliRunner().invoke(main, ["identify", "--format", "json", "Zyban LP 150 mg", "Valim 10 mg", "xyzzy"])
    assert out.exit_code == 0, out.output
    zyban, valim, nothing = json.loads(out.output)
    assert zyban["cis"] == "64556383" and zyban["substances"][0]["strength"] == "150 mg" and zyban["used_by_rules"]
    assert valim["method"] == "text-fuzzy" and valim["note"]
    assert not nothing["identified"] and nothing["refused"]
