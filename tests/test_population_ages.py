"""Population ages (the thesaurus' "sujet âgé", the STOPP/START population, the Laroche rows) are
data: they come from ``referentials/facts/clinical-facts.json`` (``populations``) or from the risk
rows, never from numbers written in the criteria or the rules."""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from checker import criteria
from checker.criteria.risks import from_risk_row
from checker.criteria.thesaurus import from_thesaurus
from checker.facts import FactTables
from checker.facts.tables import parse
from checker.iatrogenic.risks import IatrogenicRules
from checker.referentials import Referentials, referentials_dir
from checker.registry import RunSettings, get_rule
from tests.test_iatro_support import AS_OF, line, record

REPO = Path(__file__).resolve().parent.parent
POPULATION_AGES = {65, 75}


def _facts_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((referentials_dir() / "facts" / "clinical-facts.json").read_text(encoding="utf-8"))
    return data


def _tables(**populations: dict[str, int]) -> FactTables:
    """The shipped tables with some population ages changed (an edited copy of the JSON)."""
    data = copy.deepcopy(_facts_json())
    for name, ages in populations.items():
        data["populations"][name].update(ages)
    return parse(data)


class _Refs(Referentials):
    """The shipped referentials with some of them replaced by edited copies."""

    def __init__(self, **replaced: Any) -> None:
        super().__init__()
        self._replaced = {k.replace("_", "-"): v for k, v in replaced.items()}

    def get(self, ref_id: str) -> Any:
        return self._replaced[ref_id] if ref_id in self._replaced else super().get(ref_id)


def _run(rule_id: str, rec: Any, refs: Referentials) -> list[Any]:
    return list(get_rule(rule_id).run(rec, RunSettings(as_of=AS_OF, lang="en"), refs))


def test_no_population_age_is_written_in_the_criteria_or_the_rules() -> None:
    """No integer 65 or 75 in the code of checker/criteria and checker/rules (docstrings and comments
    aside), and the constants that held them are gone."""
    found = []
    for path in sorted((REPO / "checker" / "criteria").glob("*.py")) + sorted((REPO / "checker" / "rules").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and type(node.value) is int and node.value in POPULATION_AGES:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value}")
            if isinstance(node, ast.Name) and node.id in ("ELDERLY_FROM", "NOT_ELDERLY_BELOW"):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.id}")
    assert found == []


def test_the_shipped_populations_carry_their_ages_and_a_source() -> None:
    tables = _tables()
    elderly, stopp = tables.population("elderly"), tables.population("stopp-start")
    assert (elderly.from_age, elderly.undetermined_from) == (75, 65)
    assert (stopp.from_age, stopp.undetermined_from) == (65, None)
    for entry in _facts_json()["populations"].values():
        assert entry["basis"].startswith("source: ")


def test_a_population_with_an_undetermined_band_above_its_age_is_refused() -> None:
    data = copy.deepcopy(_facts_json())
    data["populations"]["elderly"]["undetermined_from_age"] = 80
    with pytest.raises(ValueError, match="populations"):
        parse(data)


class _Patient:
    """A context with a patient and no line, with the given tables."""

    def __init__(self, birth: date, tables: FactTables, day: date = date(2026, 1, 15)) -> None:
        self.record, self.day, self.tables = record(birth=birth), day, tables
        self.aspirin_bands: tuple[dict[str, Any], ...] = ()


@pytest.mark.parametrize("want", [True, False])
def test_the_thesaurus_elderly_condition_reads_its_ages_from_the_tables(want: bool) -> None:
    node = from_thesaurus({"kind": "elderly", "elderly": want})
    seventy = date(1955, 6, 1)  # 70 on 2026-01-15
    shipped = criteria.evaluate(node, _Patient(seventy, _tables()))  # type: ignore[arg-type]
    assert shipped.value is None and shipped.datum == "elderly"  # 65-74: the thesaurus leaves it open
    lowered = criteria.evaluate(node, _Patient(seventy, _tables(elderly={"from_age": 70})))  # type: ignore[arg-type]
    assert lowered.value is want
    raised = criteria.evaluate(node, _Patient(seventy, _tables(elderly={"undetermined_from_age": 72})))  # type: ignore[arg-type]
    assert raised.value is (not want)
    for birth, value in ((date(1940, 1, 1), want), (date(1990, 1, 1), not want)):  # 86 and 36
        assert criteria.evaluate(node, _Patient(birth, _tables())).value is value  # type: ignore[arg-type]


def test_the_stopp_age_of_pr002_and_pr003_comes_from_the_tables() -> None:
    oxazepam = record(line("a", "oxazepam", atc=("N05BA04",)), birth=date(1955, 6, 1))  # 70
    assert [c["criterion"] for f in _run("PR002", oxazepam, _Refs()) for c in f.evidence["criteria"]] == ["STOPP K1"]
    assert _run("PR002", oxazepam, _Refs(clinical_facts=_tables(**{"stopp-start": {"from_age": 80}}))) == []
    young = record(line("a", "oxazepam", atc=("N05BA04",)), birth=date(1966, 6, 1))  # 59
    assert _run("PR002", young, _Refs()) == []
    assert len(_run("PR002", young, _Refs(clinical_facts=_tables(**{"stopp-start": {"from_age": 55}})))) == 1
    # PR003: metformin (STOPP E6) with no renal function recorded: named as missing from the STOPP age
    metformin = record(line("a", "metformine", atc=("A10BA02",)), birth=date(1955, 6, 1))
    assert any("STOPP E6" in str(f.evidence) for f in _run("PR003", metformin, _Refs()))
    raised = _run("PR003", metformin, _Refs(clinical_facts=_tables(**{"stopp-start": {"from_age": 80}})))
    assert not any("STOPP E6" in str(f.evidence) for f in raised)


def test_the_laroche_age_is_the_rows_own() -> None:
    """PR002 judges the Laroche rows by their own ``min_age`` (patient-risks.tsv), with no age
    written in the rule: lowering it in an edited copy flags a 72-year-old."""
    refs = Referentials()
    data: IatrogenicRules = refs.get("iatrogenic-rules")
    bromazepam = record(line("a", "bromazepam", atc=("N05BA08",)), birth=date(1953, 6, 1))  # 72

    def laroche(rules: IatrogenicRules) -> list[str]:
        return [c["criterion"] for f in _run("PR002", bromazepam, _Refs(iatrogenic_rules=rules))
                for c in f.evidence["criteria"] if c["criterion"].startswith("Laroche")]

    assert laroche(data) == []
    rows = [dataclasses.replace(r, params={**r.params, "min_age": 70}, criteria=from_risk_row(r.kind, {**r.params, "min_age": 70}))
            if r.kind == "elderly" else r for r in data.rows]
    edited = dataclasses.replace(data, rows=rows, by_kind={})
    assert laroche(edited) == ["Laroche 2007 (laroche-bzd-long)"]
