"""Knowledge is data: the STOPP criteria PR002 evaluates come from the shipped referential, every
iteration of each criterion (not only the first), and the facts tables agree with the codes rules use."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from checker import facts
from checker.referentials import default_referentials
from tests.test_iatro_support import dose, line, record, run


def _pr002(atc: str, mg: float | None) -> list[Any]:
    dosages = (dose(mg, "mg", 1),) if mg is not None else ()
    rec = record(line("x", "substance", atc=(atc,), dosages=dosages, supply_days=30), birth=date(1940, 1, 1))
    return run("PR002", rec)


@pytest.mark.parametrize("mg, fires", [(300, True), (180, False)])
def test_stopp_c1_second_iteration_carbasalate_above_200_mg(mg: float, fires: bool) -> None:
    got = _pr002("B01AC08", mg)
    assert bool(got) is fires
    if fires:
        assert [c["criterion"] for c in got[0].evidence["criteria"]] == ["STOPP C1"]
        assert got[0].evidence["criteria"][0]["above_mg"] == 200


def _iterations() -> list[Any]:
    data = default_referentials().get("iatrogenic-rules")
    out = []
    for rid in data.stopp_selection("elderly"):
        for n, it in enumerate(data.stopp_drug_iterations(rid)):
            for atc in it["atc"]:
                out.append(pytest.param(rid, atc, it["dose"], id=f"{rid}-{n}-{atc}"))
    return out


@pytest.mark.parametrize("rid, atc, threshold", _iterations())
def test_every_drug_iteration_of_the_selected_stopp_criteria_is_evaluated(rid: str, atc: str, threshold: Any) -> None:
    """Over the whole shipped selection: a line with the iteration's ATC code (full code, or a code
    under a class prefix) is flagged, above the dose threshold when there is one, and not below it."""
    code = atc if len(atc) == 7 else (atc + "01XX")[:7]
    if threshold is None:
        got = _pr002(code, None)
        assert got and rid in [c["criterion"] for c in got[0].evidence["criteria"]]
        return
    above, below = _pr002(code, threshold["value"] * 1.5), _pr002(code, threshold["value"] * 0.5)
    assert above and rid in [c["criterion"] for c in above[0].evidence["criteria"]]
    assert not below or rid not in [c["criterion"] for c in below[0].evidence["criteria"]]


def test_every_stopp_criterion_pr002_and_pr003_name_is_in_the_shipped_referential() -> None:
    data = default_referentials().get("iatrogenic-rules")
    for family in ("elderly", "renal"):
        selection = data.stopp_selection(family)
        assert selection, family
        for rid in selection:
            assert rid in data.stopp["rules"], rid


def test_renal_codes_of_the_rules_are_those_of_the_facts_tables() -> None:
    """The rules keep no code list of their own (see tests/test_facts_tables.py): an eGFR coded with a
    code the tables list is read, one the tables do not list is not."""
    from checker.model import Coding, Concept, Observation, PatientRecord

    tables = default_referentials().get("clinical-facts")
    spec = tables.observations["egfr"]
    day = date(2026, 1, 5)
    for code, read in ((sorted(spec.codes)[0], True), ("2339-0", False)):
        rec = PatientRecord(None, observations=[Observation("Observation/o", Concept((Coding(spec.uri, code),)), 25.0,
                                                            "mL/min", effective=day)])
        assert (facts.renal_on(rec, day, tables) is not None) is read, code


@pytest.mark.parametrize("per_intake, per_day, band", [
    (75, 75, "antiplatelet"), (160, 160, "antiplatelet"), (375, 375, "antiplatelet"), (40, 40, "other"),
    (500, 1500, "analgesic"), (500, 3000, "anti-inflammatory"), (1000, 3000, "anti-inflammatory"),
    (1000, 1000, "anti-inflammatory"), (400, 400, "other"),
])
def test_aspirin_dose_bands_come_from_the_data(per_intake: float, per_day: float, band: str) -> None:
    """The thesaurus bands (ANSM 2023-09): anti-inflammatory >= 1 g per intake and/or >= 3 g a day;
    analgesic >= 500 mg per intake; antiplatelet 50 to 375 mg a day."""
    from checker.iatrogenic.conditions import aspirin_category

    bands = default_referentials().get("iatrogenic-rules").aspirin_bands
    assert bands and aspirin_category(bands, per_intake, per_day) == band
    assert aspirin_category((), per_intake, per_day) == "other"  # nothing hard-coded behind the data


def test_the_hand_encoded_thesaurus_conditions_are_data_and_are_those_shipped() -> None:
    """Every hand-encoded pair of referentials/thesaurus/hand-encoded.json is an entry of the shipped
    encoding flagged hand_encoded, with the same levels and conditions, and no other entry is flagged;
    the local-route exceptions are the shipped ones."""
    import json

    from tests.conftest import REPO

    data = json.loads((REPO / "referentials" / "thesaurus" / "hand-encoded.json").read_text(encoding="utf-8"))
    th = default_referentials().get("ansm-thesaurus")
    shipped: dict[frozenset[str], list[Any]] = {}
    for e in th.entries:
        if e.hand_encoded:
            shipped.setdefault(frozenset((e.a, e.b)), []).append(e)
    wanted = {frozenset(x["pair"]): x["levels"] for x in data["multi_level_conditions"]["entries"]}
    assert set(shipped) == set(wanted)
    for pair, entries in shipped.items():
        levels = {k: v for k, v in wanted[pair].items() if not k.startswith("_")}
        for e in entries:
            assert {lv.level: lv.condition for lv in e.levels} == levels, sorted(pair)
    local = {k: v for k, v in data["local_routes"].items() if k != "note"}
    assert th.local_routes == local
