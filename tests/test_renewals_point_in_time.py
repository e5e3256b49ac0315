"""Renewals are read on written periods only: two open-ended lines stay two treatments whatever --as-of, and a short course begun in the last days of a line and ending with it is a second treatment, not a renewal."""

from __future__ import annotations

from checker import check
from tests.test_facts_point_in_time import bundle, med

def rules(data, as_of):
    r = check(data, as_of=as_of, select=["PR005", "DU001"])
    assert not r.errors
    return sorted(f.rule for f in r.findings)

def test_two_open_ended_lines_point_in_time():
    # two running paracetamol 1 g x4/day prescriptions, no end written; the second from 2026-01-10
    data = bundle(med("p1", "Doliprane 1000 mg comprimé", "2025-01-01", freq=4, days=None),
                  med("p2", "Doliprane 1000 mg comprimé", "2026-01-10", freq=4, days=None))
    a, b = rules(data, "2026-01-12"), rules(data, "2026-01-20")
    assert a == b

def test_short_course_nested_in_the_last_week_is_no_renewal():
    # GP: 30 days from 1 Jan (to 30 Jan); another prescriber adds 1 g x4 for 3 days from 27 Jan:
    # 8 g/day on 27-29 Jan, and the second line ends before the first: it does not take over
    data = bundle(med("p1", "Doliprane 1000 mg comprimé", "2025-01-01", freq=4, days=30),
                  med("p2", "Dafalgan 1 g comprimé", "2025-01-27", freq=4, days=3))
    got = rules(data, "2026-01-15")
    assert got == ["DU001", "PR005"]
