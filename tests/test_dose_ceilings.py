"""PR005 over the whole dose-ceiling table: every row checked per intake, per day, for older
people, per kg of weight and summed over concurrent lines, just above and at its maximum."""

from __future__ import annotations

import math
from datetime import date

import pytest

from checker.model import Coding, Concept, Observation
from checker.referentials import default_referentials
from tests.test_iatro_support import dose, line, record, run

ROWS = [r for r in default_referentials().get("iatrogenic-rules").kind("max-dose") if "max_intakes_per_week" not in r.params]
ADULT_BIRTH = date(1980, 3, 1)  # 45 on the order's day (2026-01-01)
ROUTE = {"oral": "voie orale", "iv": "intraveineuse", "rect": "rectale", "intramusc": "intramusculaire"}


def _route(row) -> str:  # noqa: ANN001
    routes = row.params.get("routes") or ["oral"]
    return ROUTE.get(routes[0], routes[0])


def _line(row, ref: str, mg: float, per_day: int):  # noqa: ANN001
    return line(ref, row.keys[0], dosages=(dose(mg, "mg", per_day),), route=_route(row))


def _over(found: list, what: str) -> list:
    return [o for f in found for o in f.evidence.get("over", []) if o["what"] == what]


def _weight(kg: float) -> Observation:
    return Observation(ref="Observation/weight", code=Concept((Coding("http://loinc.org", "29463-7"),)), value=kg,
                       unit="kg", effective=date(2025, 12, 20))


def test_the_table_has_forty_substances_each_with_a_dated_source() -> None:
    rows = default_referentials().get("iatrogenic-rules").kind("max-dose")
    assert len({r.keys[0] for r in rows}) >= 40
    assert all(r.source.label and r.source.url.startswith("http") and r.source.edition for r in rows)


# Sites of the publishers themselves: the BDPM, the ANSM (RCP pages, safety documents) and the HAS.
PUBLISHERS = frozenset({"base-donnees-publique.medicaments.gouv.fr", "agence-prd.ansm.sante.fr", "ansm.sante.fr",
                        "archive.ansm.sante.fr", "www.has-sante.fr", "has-sante.fr"})
# Rows whose figure was read only on a copy of the SmPC or on another site; each still awaits the
# publisher's page (a row leaves this set when it is re-sourced, and no new row may join it).
AWAITING_PUBLISHER = frozenset({"metoclopramide", "levetiracetam", "gabapentin", "allopurinol", "allopurinol-child",
                                "paroxetine", "atorvastatin", "quetiapine", "methylphenidate"})


def test_each_ceiling_cites_a_publisher_page_or_is_listed_as_awaiting_one() -> None:
    from urllib.parse import urlparse

    rows = default_referentials().get("iatrogenic-rules").kind("max-dose")
    elsewhere = {r.id for r in rows if urlparse(r.source.url).hostname not in PUBLISHERS}
    assert elsewhere == AWAITING_PUBLISHER


def _adult(row) -> bool:  # noqa: ANN001
    return "max_age" not in row.params


@pytest.mark.parametrize("row", [r for r in ROWS if _adult(r) and "per_intake_mg" in r.params], ids=lambda r: r.id)
def test_per_intake_just_above_and_at_the_maximum(row) -> None:  # noqa: ANN001
    cap = float(row.params["per_intake_mg"])
    above = run("PR005", record(_line(row, "a", cap * 1.05, 1), birth=ADULT_BIRTH))
    at = run("PR005", record(_line(row, "a", cap, 1), birth=ADULT_BIRTH))
    assert [o["max_mg"] for o in _over(above, "per_intake")] == [cap], [f.summary for f in above]
    assert _over(at, "per_intake") == [] and _over(at, "per_day") == []


def _split(total: float, per_intake_cap: float | None) -> tuple[float, int]:
    """``total`` mg a day in equal intakes each under the per-intake maximum."""
    n = 2 if per_intake_cap is None else max(2, math.ceil(total / per_intake_cap) + 1)
    return total / n, n


@pytest.mark.parametrize("row", [r for r in ROWS if _adult(r) and "per_day_mg" in r.params], ids=lambda r: r.id)
def test_per_day_just_above_and_at_the_maximum(row) -> None:  # noqa: ANN001
    cap = float(row.params["per_day_mg"])
    mg, n = _split(cap * 1.05, row.params.get("per_intake_mg"))
    above = run("PR005", record(_line(row, "a", mg, n), birth=ADULT_BIRTH))
    mg_at, n_at = _split(cap, row.params.get("per_intake_mg"))
    at = run("PR005", record(_line(row, "a", mg_at, n_at), birth=ADULT_BIRTH))
    assert [o["max_mg"] for o in _over(above, "per_day")] == [cap], [f.summary for f in above]
    assert _over(at, "per_day") == [] and _over(at, "per_intake") == []


@pytest.mark.parametrize("row", [r for r in ROWS if _adult(r) and "per_day_mg" in r.params], ids=lambda r: r.id)
def test_doses_are_summed_over_concurrent_lines(row) -> None:  # noqa: ANN001
    """Two lines of the same substance, each at 60 % of the daily maximum, taken together."""
    cap = float(row.params["per_day_mg"])
    mg, n = _split(cap * 0.6, row.params.get("per_intake_mg"))
    found = run("PR005", record(_line(row, "a", mg, n), _line(row, "b", mg, n), birth=ADULT_BIRTH))
    totals = [f for f in found if _over([f], "per_day_total")]
    assert len(totals) == 1 and len(totals[0].implicated) == 2, [f.summary for f in found]
    apart = run("PR005", record(_line(row, "a", mg, n), birth=ADULT_BIRTH))
    assert not _over(apart, "per_day_total")


OLDER = [r for r in ROWS if "older_per_day_mg" in r.params or "older_per_intake_mg" in r.params]


@pytest.mark.parametrize("row", OLDER, ids=lambda r: r.id)
def test_the_older_adult_maximum_applies_from_its_age(row) -> None:  # noqa: ANN001
    p = row.params
    what = "per_day" if "older_per_day_mg" in p else "per_intake"
    older_cap = float(p[f"older_{what}_mg"])
    age = int(p["older_from_age"])
    born_older = date(2026 - age - 1, 6, 1)  # age on 2026-01-01
    born_younger = date(2026 - age + 1, 6, 1)
    mg, n = (_split(older_cap * 1.05, p.get("per_intake_mg")) if what == "per_day" else (older_cap * 1.05, 1))
    older = run("PR005", record(_line(row, "a", mg, n), birth=born_older))
    younger = run("PR005", record(_line(row, "a", mg, n), birth=born_younger))
    assert [(o["max_mg"], o["basis"]) for o in _over(older, what)] == [(older_cap, "older")]
    assert _over(younger, what) == []


WEIGHT = [r for r in ROWS if "per_kg_day_mg" in r.params or "per_kg_intake_mg" in r.params]


@pytest.mark.parametrize("row", WEIGHT, ids=lambda r: r.id)
def test_the_weight_based_maximum_uses_the_recorded_weight(row) -> None:  # noqa: ANN001
    """A 15 kg eight-year-old: above the per-kg daily maximum is reported with basis ``weight``; at
    it, nothing; with no weight recorded, the missing weight is named for a child's row."""
    p = row.params
    kg, child = 15.0, date(2017, 6, 1)
    what = "per_day" if "per_kg_day_mg" in p else "per_intake"
    cap = float(p[f"per_kg_{'day' if what == 'per_day' else 'intake'}_mg"]) * kg
    intake_cap = p["per_kg_intake_mg"] * kg if "per_kg_intake_mg" in p else p.get("per_intake_mg")
    mg, n = _split(cap * 1.05, intake_cap) if what == "per_day" else (cap * 1.05, 1)
    above = run("PR005", record(_line(row, "a", mg, n), birth=child, observations=(_weight(kg),)))
    assert (cap, "weight") in [(round(o["max_mg"], 3), o["basis"]) for o in _over(above, what)], [f.summary for f in above]
    mg_at, n_at = _split(cap, intake_cap) if what == "per_day" else (cap, 1)
    at = run("PR005", record(_line(row, "a", mg_at, n_at), birth=child, observations=(_weight(kg),)))
    assert _over(at, what) == []
    unweighed = run("PR005", record(_line(row, "a", mg, n), birth=child))
    if "max_age" in p or "per_kg_max_age" in p:
        assert any(f.evidence.get("missing") == "weight" for f in unweighed), [f.summary for f in unweighed]


def test_a_gel_is_not_checked_against_an_oral_ceiling() -> None:
    row = next(r for r in ROWS if r.id == "ibuprofen")
    gel = line("a", "ibuprofene", dosages=(dose(5000, "mg", 4),), route="voie cutanée")
    assert run("PR005", record(gel, birth=ADULT_BIRTH)) == []
    assert _over(run("PR005", record(_line(row, "a", 5000, 4), birth=ADULT_BIRTH)), "per_day")


@pytest.mark.parametrize("unit", ["lyophilisat", "lyophilisats", "lyophilisat oral", "comprimé orodispersible"])
def test_an_oral_lyophilisate_or_orodispersible_tablet_counts_as_one_unit(unit: str) -> None:
    """Doses written in oral lyophilisates or orodispersible tablets are units of the line's strength."""
    from checker.model import Quantity

    row = next(r for r in ROWS if r.id == "metopimazine")
    cap = float(row.params["per_day_mg"])
    strength = Quantity(cap / 4, "mg")
    above = run("PR005", record(line("a", row.keys[0], dosages=(dose(1, unit, 5),), strength=strength,
                                     route=_route(row)), birth=ADULT_BIRTH))
    at = run("PR005", record(line("a", row.keys[0], dosages=(dose(1, unit, 4),), strength=strength,
                                  route=_route(row)), birth=ADULT_BIRTH))
    assert [o["max_mg"] for o in _over(above, "per_day")] == [cap], [f.summary for f in above]
    assert at == [], [f.summary for f in at]
