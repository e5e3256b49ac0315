"""A pregnancy (or any condition) whose abatement is written to the month or the year lasts through that month or year: it is still present on the 15th of the month it ended in."""

from __future__ import annotations

import pytest
from tests.test_facts_point_in_time import bundle, med, condition, findings

@pytest.mark.parametrize("field, value", [("abatementPeriod", {"start": "2025-09", "end": "2025-09"}),
                                          ("abatementPeriod", {"end": "2025"}),
                                          ("abatementDateTime", "2025-09-30")])
def test_pregnancy_ending_in_a_month_covers_the_month(field, value):
    g = condition("g", "Grossesse", onset="2025-01-10", clinical="resolved")
    g[field] = value
    data = bundle(g, med("v", "Valproate de sodium 500 mg comprimé gastro-résistant", "2025-09-15"),
                  sex="female", birth="1995-01-01")
    got = findings(data, "2026-01-15", "PR004")
    assert got and got[0]["severity"] == "critical"
