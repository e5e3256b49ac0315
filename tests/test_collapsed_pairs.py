"""Many repeated lines of two products are reported once (bounded cost), never judged on the wrong
lines: each pair of line signatures is judged on its earliest and on its latest lines."""

from __future__ import annotations

from pathlib import Path

from checker import check

DATA = Path(__file__).parent / "data" / "collapsed"


def _findings(name: str, rule: str) -> list:
    report = check([str(DATA / name)], as_of="2026-01-15", select=[rule])
    return [f for f in report.findings if f.rule == rule]


def test_interaction_on_current_lines_is_judged_at_the_current_age() -> None:
    """Eszopiclone + clarithromycin: one old pair (age 46) and five + five current lines (age 82):
    the contraindication of the older patient is kept, not the precaution of the old pair."""
    found = _findings("ix-elderly-latest-lines.json", "IX001")
    assert [f.level for f in found] == ["CI"]


def test_class_duplicate_found_when_one_product_fills_the_first_lines() -> None:
    """Five loop diuretics of one product, then five of another (record in blocks): DU002 given."""
    assert len(_findings("du2-block-order.json", "DU002")) == 1


def test_an_as_needed_first_line_does_not_hide_regular_ones() -> None:
    """Salbutamol: one as-needed line then four regular ones, with salmeterol: the regular use is
    a duplicate of beta-2 agonists; the as-needed standard combination alone would not be."""
    assert len(_findings("du2-as-needed-first.json", "DU002")) == 1
