"""One criteria language: every thesaurus condition, patient-risk row and protocol of the shipped
referentials is read into criteria nodes, one evaluator judges them with three-valued logic, and an
unknown verdict from any source names the datum that is missing."""

from __future__ import annotations

import gzip
import json
import random
import re
import tomllib
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from checker import criteria
from checker.criteria import (
    NODE_TYPES,
    Age,
    AllOf,
    Always,
    AnyOf,
    CriteriaError,
    HasAllergy,
    HasCondition,
    Local,
    Node,
    Not,
    Observation,
    Otherwise,
    Pregnant,
    RenalFunction,
    Route,
    Sex,
    Unstated,
    Verdict,
    from_risk_row,
    from_thesaurus,
    walk,
)
from checker.criteria.evaluate import _EVALUATORS
from checker.findings import Message
from checker.criteria.risks import CONDITION_PARAMS
from checker.criteria.thesaurus import KINDS, PROSE_ONLY
from checker.facts import Indication
from checker.iatrogenic.conditions import PairContext, settle
from checker.iatrogenic.risks import LineContext, load_rows
from checker.model import Concept, MedicationOrder, Patient, PatientRecord, ServiceOrder
from checker.protocols import engine
from checker.protocols.language import LOCAL_TESTS
from checker.referentials import default_referentials, referentials_dir
from tests.test_iatro_support import condition, line, record

REPO = Path(__file__).resolve().parents[1]
DAY = date(2026, 1, 15)


def _raw_conditions() -> list[dict[str, Any]]:
    path = referentials_dir() / "thesaurus" / "ansm-thesaurus-2023-09.json.gz"
    data = json.loads(gzip.decompress(path.read_bytes()))
    out = []
    for e in data["entries"]:
        out += [lv["condition"] for lv in e["levels"]]
        if e.get("gate"):
            out.append(e["gate"])
    return out


def _kinds(cond: Any) -> list[str]:
    if isinstance(cond, dict):
        return ([cond["kind"]] if "kind" in cond else []) + [k for v in cond.values() for k in _kinds(v)]
    if isinstance(cond, list):
        return [k for v in cond for k in _kinds(v)]
    return []


# --- every source reads into nodes ------------------------------------------------------------------

def test_every_node_type_has_an_evaluator() -> None:
    assert set(NODE_TYPES) == set(_EVALUATORS)


def test_every_condition_of_every_shipped_thesaurus_entry_is_read_into_criteria_nodes() -> None:
    raw = _raw_conditions()
    assert len(raw) > 3000
    for cond in raw:
        assert set(_kinds(cond)) <= KINDS, cond
        node = from_thesaurus(cond)  # raises on anything it cannot read
        for n in walk(node):
            assert isinstance(n, NODE_TYPES)
            assert not isinstance(n, Local)  # no leaf left to a context's own code
            if isinstance(n, Unstated):  # only circumstances the encoding gives in prose, each named
                assert n.datum in PROSE_ONLY | {"elderly", "renal-function", "hepatic-function", "heart-function",
                                                "indication"}, cond
    th = default_referentials().get("ansm-thesaurus")  # and the loaded thesaurus carries them
    assert all(isinstance(lv.criterion, NODE_TYPES) for e in th.entries for lv in e.levels)
    assert all(e.gate_criterion is not None for e in th.entries if e.gate is not None)


@pytest.mark.parametrize("cond", [{"kind": "moon-phase"}, {"of": []}, {"kind": "not"},
                                  {"kind": "renal-function", "impaired": True, "below": "thirty", "normal_from": 60}])
def test_a_condition_outside_the_language_is_an_error_not_a_silent_other(cond: dict[str, Any]) -> None:
    with pytest.raises(CriteriaError):
        from_thesaurus(cond)


def test_route_gates_accept_one_route_or_a_list() -> None:
    one = from_thesaurus({"kind": "route-gate", "keys": ["or"], "route": "iv"})
    many = from_thesaurus({"kind": "route-gate", "keys": ["or"], "routes": ["iv", "oral"]})
    assert one.routes == frozenset({"iv"}) and many.routes == frozenset({"iv", "oral"})  # type: ignore[union-attr]


_PARAM_NODE = {"min_age": "population", "max_age": "population", "routes": "route", "below": "risk", "inclusive": "risk",
               "older_from_age": "older", "per_kg_max_age": "weight_based"}


def test_every_patient_risk_row_condition_is_read_into_criteria_nodes() -> None:
    rows = load_rows(referentials_dir() / "iatrogenic" / "patient-risks.tsv")
    assert rows
    for row in rows:
        assert row.criteria == from_risk_row(row.kind, row.params)
        for param in CONDITION_PARAMS[row.kind] & set(row.params):
            assert getattr(row.criteria, _PARAM_NODE[param]) is not None, (row.id, param)
        if row.params.get("inclusive"):
            assert isinstance(row.criteria.risk, RenalFunction) and row.criteria.risk.inclusive, row.id
        for node in row.criteria.nodes():
            assert all(isinstance(n, NODE_TYPES) and not isinstance(n, (Local, Unstated)) for n in walk(node))
        if row.kind == "pregnancy":
            assert isinstance(row.criteria.risk, Pregnant)
        if row.kind == "renal":
            assert isinstance(row.criteria.risk, RenalFunction) and row.criteria.risk.below == row.params["below"]


def test_a_risk_row_missing_the_condition_its_kind_needs_is_an_error() -> None:
    with pytest.raises(CriteriaError):
        from_risk_row("renal", {"min_age": 65})
    with pytest.raises(CriteriaError):
        from_risk_row("elderly", {})


def test_every_protocol_criterion_is_read_into_criteria_nodes() -> None:
    protocols = default_referentials().get("protocols").protocols
    assert len(protocols) > 20
    shared = {"age": Age, "sex": Sex, "observation": Observation, "condition": HasCondition, "allergy": HasAllergy}
    for p in protocols:
        for crit in p.criteria.values():
            assert isinstance(crit.node, AnyOf if crit.match == "any" else AllOf)
            assert len(crit.node.of) == len(crit.tests)
            for t, node in zip(crit.tests, crit.node.of):
                if t.kind in shared:
                    assert isinstance(node, shared[t.kind]), (p.id, crit.id, t.kind)
                else:
                    assert t.kind in LOCAL_TESTS and isinstance(node, Local) and node.kind == t.kind


# --- the evaluator's three-valued logic -------------------------------------------------------------

class _Patient:
    """A context with a record and no line: enough for combinators and patient leaves."""

    def __init__(self, rec: PatientRecord, day: date = DAY, lines: Sequence[tuple[str, MedicationOrder]] = ()) -> None:
        self.record, self.day, self._lines = rec, day, tuple(lines)
        self.tables = default_referentials().get("clinical-facts")
        self.aspirin_bands: tuple[dict[str, Any], ...] = ()

    def reasons(self) -> tuple[Concept, ...]:
        return ()

    def indications(self) -> list[Indication]:
        return []

    def lines(self) -> tuple[tuple[str, MedicationOrder], ...]:
        return self._lines

    def nodes_for(self, key: str) -> frozenset[str]:
        return frozenset({key})

    def closure(self, key: str) -> frozenset[str]:
        return frozenset({key})

    def route_of(self, line: MedicationOrder) -> str | None:
        return None

    def daily_dose(self, line: MedicationOrder, key: str) -> None:
        return None

    def local(self, node: Local) -> Verdict:
        raise AssertionError("no local leaf here")


YES_NODE, NO_NODE = Always(), Not(Always())


def _ev(node: Node) -> Verdict:
    return criteria.evaluate(node, _Patient(record()))


def test_all_of_any_of_and_not_keep_the_name_of_the_missing_datum() -> None:
    a, b = Unstated("renal-function"), Unstated("elderly")
    assert _ev(AllOf((YES_NODE, a))) == Verdict(None, ("renal-function",))
    assert _ev(AllOf((a, NO_NODE))).value is False  # one "no" decides
    assert _ev(AnyOf((a, YES_NODE))).value is True  # one "yes" decides
    assert _ev(AnyOf((NO_NODE, a, b))) == Verdict(None, ("renal-function", "elderly"))
    assert _ev(AnyOf((NO_NODE, a, b))).datum == "renal-function"  # the first one decided
    assert _ev(Not(a)) == Verdict(None, ("renal-function",))
    assert _ev(Not(AllOf((b, Not(a))))).missing == ("elderly", "renal-function")
    assert _ev(AllOf(())).value is True and _ev(AnyOf(())).value is False


def _random_tree(rng: random.Random, depth: int) -> Node:
    if depth == 0 or rng.random() < 0.3:
        leaves: list[Node] = [YES_NODE, NO_NODE, Unstated(rng.choice(["route", "elderly", "ulcer", "dose"]))]
        return rng.choice(leaves)
    pick = rng.random()
    if pick < 0.2:
        return Not(_random_tree(rng, depth - 1))
    parts = tuple(_random_tree(rng, depth - 1) for _ in range(rng.randint(1, 4)))
    return AllOf(parts) if pick < 0.6 else AnyOf(parts)


def _kleene(node: Node) -> bool | None:
    if isinstance(node, Always):
        return True
    if isinstance(node, Unstated):
        return None
    if isinstance(node, Not):
        v = _kleene(node.of)
        return None if v is None else not v
    assert isinstance(node, (AllOf, AnyOf))
    values = [_kleene(c) for c in node.of]
    if isinstance(node, AllOf):
        return False if False in values else None if None in values else True
    return True if True in values else None if None in values else False


def test_three_valued_logic_over_random_criteria() -> None:
    rng = random.Random(14)
    for _ in range(2000):
        node = _random_tree(rng, 4)
        got = _ev(node)
        assert got.value is _kleene(node), node
        if got.value is None:  # an unknown names a datum, one of the unstated circumstances of the tree
            names = {n.datum for n in walk(node) if isinstance(n, Unstated)}
            assert got.datum in names and set(got.missing) <= names
        else:
            assert got.missing == ()


def test_patient_leaves_read_the_record_on_the_day() -> None:
    old = _Patient(record(birth=date(1950, 6, 1)), day=date(2026, 1, 1))
    elderly = Age("elderly", min=75, unknown_band=(65, 75))
    assert criteria.evaluate(elderly, old).value is True
    assert criteria.evaluate(elderly, _Patient(old.record, day=date(2024, 1, 1))) == Verdict(
        None, ("elderly",), (criteria.AgeOn(73),))  # 73 that day: a band the thesaurus leaves open
    assert criteria.evaluate(elderly, _Patient(record(birth=date(2000, 1, 1)))).value is False


# --- an unknown from each source names its datum ----------------------------------------------------

def _catalogue_data() -> set[str]:
    words = [set(tomllib.loads((REPO / "checker" / "formats" / "messages" / f"{lang}.toml").read_text())["datum"])
             for lang in ("fr", "en")]
    return words[0] & words[1]


def test_every_thesaurus_unknown_names_a_datum_the_catalogue_words() -> None:
    """Each entry of the shipped thesaurus, on a pair of lines with no dosage and no route, for a
    patient with no birth date, no observation and no condition: every unknown condition names a
    datum, and every datum has a wording in both languages."""
    th = default_referentials().get("ansm-thesaurus")
    tables = default_referentials().get("clinical-facts")
    bands = default_referentials().get("iatrogenic-rules").aspirin_bands
    worded = _catalogue_data()
    bare = PatientRecord(patient=Patient("Patient/p1"))
    rng = random.Random(2023)
    seen: set[str] = set()
    for e in th.entries:
        members_a = th.entities.get(e.a, {}).get("members") or [e.a]
        members_b = th.entities.get(e.b, {}).get("members") or [e.b]
        ka, kb = rng.choice(members_a), rng.choice(members_b)
        ctx = PairContext(th, bare, DAY, ka, kb, line("a", ka), line("b", kb), tables, DAY, bands)
        for node in [lv.criterion for lv in e.levels] + ([e.gate_criterion] if e.gate_criterion else []):
            if isinstance(node, Otherwise):
                continue  # read by the level settling, never asked alone
            v = criteria.evaluate(node, ctx)
            if v.value is None:
                assert v.datum, (e.a, e.b, node)
                seen.update(v.missing)
        settled = settle(e, ctx)
        assert settled.settled or settled.missing
    assert seen and seen <= worded, seen - worded
    assert {"renal-function", "route", "aspirin-dose", "elderly"} <= seen


def test_patient_risk_rows_unknowns_name_their_datum() -> None:
    rows = {r.id: r for r in load_rows(referentials_dir() / "iatrogenic" / "patient-risks.tsv")}
    tables = default_referentials().get("clinical-facts")
    bare = PatientRecord(patient=Patient("Patient/p1", None, "female"))
    order = line("x", "amiloride")

    def ask(node: Node | None) -> Verdict:
        assert node is not None
        return criteria.evaluate(node, LineContext(bare, DAY, tables, order, "amiloride"))

    beers = rows["beers-amiloride"].criteria
    assert ask(beers.population).datum == "age"
    assert ask(beers.risk).datum == "renal-function"
    assert ask(rows["valproate"].criteria.risk).datum == "pregnancy"
    assert ask(rows["tramadol"].criteria.route).datum == "route"
    assert ask(rows["ibuprofen-child"].criteria.population).datum == "age"
    assert isinstance(rows["tramadol"].criteria.route, Route)


def _protocol_orders() -> list[tuple[Any, PatientRecord, Any, str]]:
    """Every protocol with each of its criteria, on a bare record (no birth date, no sex, no
    observation) and a draft order of the kind the protocol applies to."""
    out = []
    bare = PatientRecord(patient=Patient("Patient/p1"))
    for p in default_referentials().get("protocols").protocols:
        if p.applies_to_services:
            order: Any = ServiceOrder("ServiceRequest/s1", "active", "order", Concept(text="x"), draft=True)
            target = p.acts[0].id
        else:
            order = line("m", "x", authored=None)
            target = p.medications[0].id
        out.append((p, bare, order, target))
    return out


def test_protocol_unknowns_name_their_datum_and_are_worded() -> None:
    tables = default_referentials().get("clinical-facts")
    stable = {"birth", "sex", "order_day", "start"}
    seen: set[str] = set()
    for p, rec, order, target in _protocol_orders():
        ctx = engine._Context(p, rec, order, target, DAY, "en", tables)
        for crit in p.criteria.values():
            v = ctx.verdict(crit.id)
            if v.value is None:
                assert v.missing, (p.id, crit.id)
                for datum in v.missing:
                    what, _, ref = datum.partition(":")
                    assert datum in stable or (what in ("criterion", "onset") and ref in p.criteria), datum
                    seen.add(what)
                words = ctx.criterion(crit.id).missing
                assert words and all(isinstance(w, Message) and w.code.startswith("OP.missing-") for w in words)
                for lang in ("fr", "en"):
                    texts = [w.text(lang, "finding_detail") for w in words]
                    assert all(t and not t.startswith(("criterion:", "onset:")) and t not in stable for t in texts)
    assert {"birth", "criterion"} <= seen


def test_protocol_age_unknown_is_worded_as_the_birth_date() -> None:
    tables = default_referentials().get("clinical-facts")
    worded = []
    for p, rec, order, target in _protocol_orders():
        ctx = engine._Context(p, rec, order, target, DAY, "fr", tables)
        for crit in p.criteria.values():
            if "birth" in ctx.verdict(crit.id).missing:
                worded.append(ctx.criterion(crit.id).missing)
    assert worded and all("date de naissance du patient" in [w.text("fr", "finding_detail") for w in words]
                          for words in worded)


def test_condition_and_allergy_leaves_read_negations_and_name_where_they_matched() -> None:
    cystitis = criteria.Matcher(patterns=(re.compile(r"cystite"),))
    denied = record(conditions=(condition("N30", text="Pas de cystite"),))
    stated = record(conditions=(condition("N30", text="Cystite aiguë"),))
    node = HasCondition(cystitis, in_reason=False)
    assert criteria.evaluate(node, _Patient(denied)).value is False
    got = criteria.evaluate(node, _Patient(stated))
    assert got.value is True and any(isinstance(e, criteria.Named) and e.where == "record" for e in got.evidence)
    assert criteria.evaluate(HasAllergy(cystitis), _Patient(stated)).value is False
