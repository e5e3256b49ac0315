"""A stopped line runs to its written end whatever --as-of: when it was stopped is not recorded, and --as-of only closes open periods."""

from __future__ import annotations

from checker import check
from tests.test_facts_point_in_time import bundle, med

def ix(data, as_of):
    r = check(data, as_of=as_of, select=["IX001"])
    assert not r.errors
    return [(f.rule, f.severity) for f in r.findings]

def test_a_stopped_line_does_not_grow_with_as_of():
    # warfarin written 2025-12-01 for 90 days, marked stopped; aspirin written 2026-01-15
    data = bundle(med("war", "Warfarine 5 mg comprimé", "2025-12-01", days=90, status="stopped"),
                  med("asp", "Acide acétylsalicylique 75 mg sachet", "2026-01-15", dose=75, unit="mg", days=30))
    a, b = ix(data, "2026-01-15"), ix(data, "2026-06-01")
    assert a == b
