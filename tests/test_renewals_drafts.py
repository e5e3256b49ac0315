"""A draft of the same medication over a line still running with no written end is a second treatment, whether or not the EHR dates the draft: an open-ended line never runs out, so it has no renewal."""

from __future__ import annotations

import pytest
from checker import check
from tests.test_facts_point_in_time import bundle, med

@pytest.mark.parametrize("authored", [None, "2026-01-15"])
def test_draft_over_a_running_open_ended_line(authored):
    running = med("p1", "Doliprane 1000 mg comprimé", "2025-06-01", freq=4, days=None)
    draft = med("d1", "Doliprane 1000 mg comprimé", "2026-01-15", freq=4, days=5, status="draft")
    if authored is None:
        del draft["authoredOn"]
    r = check(bundle(running, draft), as_of="2026-01-15", select=["PR005", "DU001"])
    got = sorted(f.rule for f in r.findings)
    assert got == ["DU001", "PR005"]
