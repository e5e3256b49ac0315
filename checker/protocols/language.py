"""The protocol language: XML files validated by ``referentials/schema/protocol.xsd``.

:func:`parse_file` validates one file against the XSD (lxml), then checks what a schema cannot:
references between criteria, checks and outcomes, the decision graph (a DAG in which every node
is reachable from the start and every path ends on an outcome), and the regular expressions.
Every problem is reported as ``file:line: message``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import networkx as nx
from lxml import etree

import unicodedata

from checker.criteria import (
    Age,
    AllOf,
    AnyOf,
    CodeSpec,
    CriteriaError,
    HasAllergy,
    HasCondition,
    Local,
    Matcher,
    Node,
    Observation,
    Sex,
    ValueTest,
)
from checker.referentials import referentials_dir

__all__ = ["CodeSpec", "Matcher"]  # the criteria language's code and pattern matcher

NS = "urn:pertinence:protocol:1"
_Q = "{" + NS + "}"

Verdict = Literal["off-protocol", "undetermined", "conform", "not-applicable"]
Answer = Literal["yes", "no", "unknown"]


class ProtocolError(Exception):
    """A protocol file is invalid; ``problems`` lists ``file:line: message`` strings."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- the parsed model ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Act:
    id: str
    labels: dict[str, str]
    matcher: Matcher


@dataclass(frozen=True, slots=True)
class MedicationClass:
    id: str
    labels: dict[str, str]
    atc: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Test:
    """One criterion primitive: ``kind`` is the XML element name, ``attrs`` its attributes."""

    kind: str
    attrs: dict[str, str]
    matcher: Matcher = Matcher()
    atc: tuple[str, ...] = ()
    value: dict[str, str] | None = None  # observation value test: {"kind": "value"|"valueCode"|"valueBool", ...}
    value_code: CodeSpec | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class Criterion:
    id: str
    labels: dict[str, str]
    match: Literal["all", "any"]
    tests: tuple[Test, ...]
    line: int = 0
    node: Node = field(init=False, compare=False, repr=False)
    """The criterion in the criteria language (:mod:`checker.criteria`): all or any of its tests."""

    def __post_init__(self) -> None:
        parts = tuple(node_of_test(t, self.id) for t in self.tests)
        object.__setattr__(self, "node", AnyOf(parts) if self.match == "any" else AllOf(parts))


LOCAL_TESTS = frozenset({"onset", "otherOrder", "act", "medication", "treatmentDuration", "reasonGiven", "orderedSince",
                         "ref"})
"""Tests answered by the protocol engine's own context (the order, its other orders, the decision
graph); ``age``, ``sex``, ``observation``, ``condition`` and ``allergy`` are patient leaves of the
criteria language."""


def node_of_test(t: Test, criterion_id: str) -> Node:
    """One XML test as a criteria node; missing data are named by stable codes (``birth``, ``sex``,
    ``criterion:<id>`` for an observation the criterion needs)."""
    if t.kind == "age":
        lo, hi = t.attrs.get("min"), t.attrs.get("max")
        return Age("birth", min=None if lo is None else int(lo), max=None if hi is None else int(hi))
    if t.kind == "sex":
        return Sex("sex", "female" if t.attrs["is"] == "female" else "male")
    if t.kind == "observation":
        within = t.attrs.get("withinDays")
        return Observation(t.matcher, f"criterion:{criterion_id}", _value_test(t),
                           None if within is None else int(within), t.attrs.get("ifAbsent") == "unknown")
    if t.kind == "condition":
        where = t.attrs.get("in", "any")
        return HasCondition(t.matcher, where in ("reason", "any"), where in ("record", "any"),
                            t.attrs.get("status", "active") == "active")
    if t.kind == "allergy":
        return HasAllergy(t.matcher)
    if t.kind in LOCAL_TESTS:
        return Local(t.kind, t)
    raise CriteriaError(f"line {t.line}: <{t.kind}> is not a test of the criteria language")


def _value_test(t: Test) -> ValueTest | None:
    if t.value is None:
        return None
    kind = t.value["kind"]
    if kind == "valueBool":
        return ValueTest("valueBool", is_=t.value["is"] in ("true", "1"))
    if kind == "valueCode":
        return ValueTest("valueCode", code=t.value_code)
    return ValueTest("value", op=t.value["op"], number=float(t.value["number"]), unit=t.value.get("unit", ""))


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    criterion: str
    yes: str
    no: str
    unknown: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    id: str
    verdict: Verdict
    severity: str | None
    messages: dict[str, str]
    alternatives: dict[str, str]
    missing: dict[str, str]


@dataclass(frozen=True, slots=True)
class SourceRef:
    publisher: str
    year: str
    url: str
    title: str

    def cite(self) -> str:
        return f"{self.publisher}, « {self.title} », {self.year}"


@dataclass(frozen=True)
class Protocol:
    """One protocol: what it applies to, its criteria and its decision graph."""

    id: str
    kind: Literal["imaging", "biology", "transport", "medication"]
    version: str
    titles: dict[str, str]
    sources: tuple[SourceRef, ...]
    descriptions: dict[str, str]
    acts: tuple[Act, ...]
    medications: tuple[MedicationClass, ...]
    criteria: dict[str, Criterion]
    checks: dict[str, Check]
    outcomes: dict[str, Outcome]
    start: str
    graph: nx.DiGraph
    path: str = ""

    def title(self, lang: str = "fr") -> str:
        return self.titles.get(lang) or next(iter(self.titles.values()))

    @property
    def applies_to_services(self) -> bool:
        return self.kind in ("imaging", "biology", "transport")


# --- parsing ------------------------------------------------------------------------------------


def schema_path() -> Path:
    """The XSD shipped with the referentials."""
    return referentials_dir() / "schema" / "protocol.xsd"


@lru_cache(maxsize=4)
def _schema(path: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(path))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, huge_tree=False)


def _texts(el: etree._Element, tag: str) -> dict[str, str]:
    return {c.get("lang", "fr"): " ".join((c.text or "").split()) for c in el.findall(_Q + tag)}


def fold_pattern(pattern: str) -> str:
    """Lower case and accents removed, regex syntax kept (texts are matched after
    :func:`checker.text.fold`, so write words separated by single spaces)."""
    decomposed = unicodedata.normalize("NFKD", pattern.replace("œ", "oe").replace("Œ", "OE"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def _compile(pattern: str, where: str, problems: list[str]) -> re.Pattern[str] | None:
    try:
        return re.compile(fold_pattern(pattern))
    except re.error as exc:
        problems.append(f"{where}: invalid pattern {pattern!r} ({exc})")
        return None


def _matcher(el: etree._Element, where_file: str, problems: list[str]) -> Matcher:
    codes = tuple(
        CodeSpec(c.get("system", ""), (c.text or "").strip(), c.get("match") == "prefix", c.get("display", ""))
        for c in el.findall(_Q + "code")
    )
    pats = []
    for p in el.findall(_Q + "pattern"):
        compiled = _compile((p.text or "").strip(), f"{where_file}:{p.sourceline}", problems)
        if compiled is not None:
            pats.append(compiled)
    return Matcher(codes, tuple(pats))


def _test(el: etree._Element, file: str, problems: list[str]) -> Test:
    kind = etree.QName(el).localname
    attrs = {k: v for k, v in el.attrib.items()}
    matcher = _matcher(el, file, problems)
    atc = tuple((a.text or "").strip().upper() for a in el.findall(_Q + "atc"))
    value: dict[str, str] | None = None
    value_code: CodeSpec | None = None
    for child in el:
        name = etree.QName(child).localname
        if name == "value":
            value = {"kind": "value", **child.attrib}
        elif name == "valueBool":
            value = {"kind": "valueBool", **child.attrib}
        elif name == "valueCode":
            value = {"kind": "valueCode"}
            value_code = CodeSpec(child.get("system", ""), (child.text or "").strip(), child.get("match") == "prefix")
    if kind in ("condition", "allergy") and matcher.empty:
        problems.append(f"{file}:{el.sourceline}: <{kind}> needs at least one <code> or <pattern>")
    if kind == "observation" and matcher.empty:
        problems.append(f"{file}:{el.sourceline}: <observation> needs at least one <code> or <pattern>")
    if kind == "age" and "min" not in attrs and "max" not in attrs:
        problems.append(f"{file}:{el.sourceline}: <age> needs min or max")
    if kind == "otherOrder" and matcher.empty and attrs.get("sameAct") not in ("true", "1"):
        problems.append(f"{file}:{el.sourceline}: <otherOrder> needs sameAct=\"true\" or a <code>/<pattern>")
    return Test(kind, attrs, matcher, atc, value, value_code, el.sourceline or 0)


_XSD_ELEMENT = re.compile(r"^Element '(?:\{[^}]*\})?([\w.-]+)'(?:, attribute '([\w.-]+)')?: ")


def _schema_problem(file: str, line: int, message: str) -> str:
    """``file:line: <element>: message`` with the namespace noise of the XSD validator removed."""
    message = re.sub(r"\{urn:pertinence:protocol:1\}", "", message)
    m = _XSD_ELEMENT.match(message)
    if m is None:
        return f"{file}:{line}: {message}"
    where = f"<{m.group(1)}>" + (f" attribute '{m.group(2)}'" if m.group(2) else "")
    return f"{file}:{line}: {where}: {message[m.end():]}"


def parse_file(path: str | Path, *, schema: Path | None = None) -> Protocol:
    """Parse and fully validate one protocol file; raises :class:`ProtocolError` (file:line)."""
    path = Path(path)
    file = str(path)
    try:
        doc = etree.parse(str(path), _parser())
    except OSError as exc:
        raise ProtocolError([f"{file}: cannot read ({exc})"]) from None
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or (exc.position[0] if exc.position else 0)
        raise ProtocolError([f"{file}:{line}: not well-formed XML ({exc.msg})"]) from None
    xsd = _schema(str(schema or schema_path()))
    if not xsd.validate(doc):
        raise ProtocolError([_schema_problem(file, e.line, e.message) for e in xsd.error_log])
    return _build(doc.getroot(), file)


def _build(root: etree._Element, file: str) -> Protocol:
    problems: list[str] = []
    acts: list[Act] = []
    meds: list[MedicationClass] = []
    applies = root.find(_Q + "appliesTo")
    for el in applies:
        name = etree.QName(el).localname
        if name == "act":
            m = _matcher(el, file, problems)
            if m.empty:
                problems.append(f'{file}:{el.sourceline}: <act id="{el.get("id")}">: needs at least one <code> or <pattern>')
            acts.append(Act(el.get("id"), _texts(el, "label"), m))
        else:
            meds.append(MedicationClass(el.get("id"), _texts(el, "label"),
                                        tuple((a.text or "").strip().upper() for a in el.findall(_Q + "atc"))))
    kind = root.get("kind")
    if kind == "medication" and (acts or not meds):
        problems.append(f"{file}:{applies.sourceline}: a medication protocol applies to <medication> classes only")
    if kind != "medication" and (meds or not acts):
        problems.append(f"{file}:{applies.sourceline}: <appliesTo>: a {kind} protocol applies to <act> elements only")

    criteria: dict[str, Criterion] = {}
    for el in root.find(_Q + "criteria").findall(_Q + "criterion"):
        tests = tuple(_test(t, file, problems) for t in el if etree.QName(t).localname != "label")
        criteria[el.get("id")] = Criterion(el.get("id"), _texts(el, "label"), el.get("match", "all"), tests,
                                           el.sourceline or 0)
    act_ids = {a.id for a in acts}
    lines: dict[str, int] = {}
    for crit in criteria.values():
        for t in crit.tests:
            ref = t.attrs.get("criterion")
            if ref is not None and ref not in criteria:
                problems.append(f"{file}:{t.line}: <{t.kind}> refers to {ref!r}, which is not a criterion")
            if t.kind == "onset" and ref in criteria and not any(x.kind == "condition" for x in criteria[ref].tests):
                problems.append(f"{file}:{t.line}: <onset> needs a criterion with a <condition> ({ref!r} has none)")
            if t.kind == "act":
                for a in t.attrs["ids"].split():
                    if a not in act_ids:
                        problems.append(f"{file}:{t.line}: <act> refers to {a!r}, which is not an act of this protocol")
            if t.kind == "treatmentDuration" and not t.atc and not meds:
                problems.append(f"{file}:{t.line}: <treatmentDuration> needs <atc> children or protocol medications")
    # criterion references must not loop
    refs = nx.DiGraph()
    for crit in criteria.values():
        refs.add_node(crit.id)
        for t in crit.tests:
            if t.kind == "ref" and t.attrs["criterion"] in criteria:
                refs.add_edge(crit.id, t.attrs["criterion"])
    if not nx.is_directed_acyclic_graph(refs):
        cycle = " → ".join(n for n, _ in nx.find_cycle(refs))
        problems.append(f"{file}: criteria refer to each other in a loop ({cycle})")

    decision = root.find(_Q + "decision")
    checks: dict[str, Check] = {}
    outcomes: dict[str, Outcome] = {}
    graph = nx.DiGraph()
    for el in decision:
        name = etree.QName(el).localname
        lines[el.get("id")] = el.sourceline or 0
        if name == "check":
            c = Check(el.get("id"), el.get("criterion"), el.get("yes"), el.get("no"), el.get("unknown"),
                      _texts(el, "label"))
            checks[c.id] = c
            if c.criterion not in criteria:
                problems.append(f'{file}:{el.sourceline}: <check id="{c.id}">: uses unknown criterion {c.criterion!r}')
        else:
            verdict = el.get("verdict")
            sev = el.get("severity")
            o = Outcome(el.get("id"), verdict, sev, _texts(el, "message"), _texts(el, "alternative"),
                        _texts(el, "missing"))
            outcomes[o.id] = o
            if verdict in ("off-protocol", "undetermined"):
                if sev is None:
                    problems.append(f'{file}:{el.sourceline}: <outcome id="{o.id}">: a {verdict} outcome needs a severity')
                if "fr" not in o.messages:
                    problems.append(f'{file}:{el.sourceline}: <outcome id="{o.id}">: a {verdict} outcome needs a French <message>')
            if verdict == "off-protocol" and "fr" not in o.alternatives:
                problems.append(f'{file}:{el.sourceline}: <outcome id="{o.id}">: an off-protocol outcome needs a French <alternative>')
    nodes = set(checks) | set(outcomes)
    for c in checks.values():
        graph.add_node(c.id, kind="check")
        for answer in ("yes", "no", "unknown"):
            target = getattr(c, answer)
            if target not in nodes:
                problems.append(f'{file}:{lines[c.id]}: <check id="{c.id}">: {answer}={target!r} is not a check or outcome')
            else:
                graph.add_edge(c.id, target, answer=answer)
    for outcome_id in outcomes:
        graph.add_node(outcome_id, kind="outcome")
    start = decision.get("start")
    if start not in nodes:
        problems.append(f"{file}:{decision.sourceline}: decision start {start!r} is not a check or outcome")
    elif not problems:
        if not nx.is_directed_acyclic_graph(graph):
            cycle = " → ".join(n for n, _ in nx.find_cycle(graph))
            problems.append(f"{file}:{decision.sourceline}: the decision graph has a loop ({cycle})")
        unreachable = nodes - nx.descendants(graph, start) - {start}
        for n in sorted(unreachable, key=lambda n: lines.get(n, 0)):
            node_kind = "check" if n in checks else "outcome"
            problems.append(f'{file}:{lines.get(n, 0)}: <{node_kind} id="{n}">: node {n!r} cannot be reached from the start {start!r}')
    if problems:
        raise ProtocolError(problems)
    return Protocol(
        id=root.get("id"),
        kind=kind,
        version=root.get("version"),
        titles=_texts(root, "title"),
        sources=tuple(SourceRef(s.get("publisher"), s.get("year"), s.get("url"), " ".join((s.text or "").split()))
                      for s in root.findall(_Q + "source")),
        descriptions=_texts(root, "description"),
        acts=tuple(acts),
        medications=tuple(meds),
        criteria=criteria,
        checks=checks,
        outcomes=outcomes,
        start=start,
        graph=graph,
        path=file,
    )


def validate_files(paths: list[str | Path]) -> list[str]:
    """Every problem of every file (``file:line: message``); empty when all are valid."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for p in paths:
        try:
            proto = parse_file(p)
        except ProtocolError as exc:
            problems.extend(exc.problems)
            continue
        if proto.id in seen:
            problems.append(f"{p}:1: protocol id {proto.id!r} already used by {seen[proto.id]}")
        seen[proto.id] = str(p)
    return problems
