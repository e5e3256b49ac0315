"""Every rule family speaks in message codes: a report produced once words itself in French or in
English after the fact, French output is French throughout, and every code any registered rule (or
the FHIR reader) emits has its wording in both languages."""

from __future__ import annotations

import ast
import html
import json
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checker import check
from checker.findings import Message, Phrases, Report
from checker.formats import render
from checker.formats.catalogue import LANGS, catalogue
from checker.registry import all_rules

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "fhir_samples"
AS_OF = "2026-01-15"

# English words the catalogue's English wording uses and French wording never does (lower case, whole
# words): input data (product labels, SNOMED displays, order texts) is not searched for them.
ENGLISH = re.compile(
    r"\b(the|and|with|is|are|was|were|cannot|should|which|this|these|those|saving|missing|below|above|"
    r"taken|when|from|for|be|by|recorded|could|its|than|less|costs?|same|while|after|before|only|days|"
    r"year|found|checked|failed|unknown|duplicate|undetermined|off protocol|contraindicated|warning|"
    r"critical|allergy|pregnancy|weight|dosage not|not identified|uncertain)\b")
FRENCH_WORDING = ("économie", "Conduite :", "Faits utilisés", "Raisonnement :", "Protocole ", "Arrêter",
                  "Réévaluer", "sous le seuil", "dénomination commune", "non identifié", "incertaine",
                  "hors protocole", "pertinence non vérifiable", "Instauration", "substituable", "prise en compte")


@pytest.fixture(scope="module")
def reports() -> dict[str, Report]:
    return {lang: check([str(SAMPLES)], as_of=AS_OF, lang=lang) for lang in LANGS}


def _families(report: Report) -> set[str]:
    return {f.rule[:2] for f in report.findings}


def test_every_registered_rule_fires_on_the_shipped_samples_and_speaks_in_codes(reports: dict[str, Report]) -> None:
    fired = {f.rule for f in reports["fr"].findings}
    assert {r.id for r in all_rules()} <= fired, "a registered rule has no sample among fhir_samples"
    assert all(f.message is not None for f in reports["fr"].findings), \
        sorted({f.rule for f in reports["fr"].findings if f.message is None})


def test_a_report_produced_once_words_itself_in_either_language(reports: dict[str, Report]) -> None:
    fr, en = reports["fr"], reports["en"]
    assert fr.worded("en").to_dict() == en.to_dict()  # summary, detail, evidence, suggestion, errors
    assert en.worded("fr").to_dict() == fr.to_dict()
    for a, b in zip(fr.sorted_findings(), fr.worded("en").sorted_findings()):  # the facts do not move
        assert (a.rule, a.severity, a.level, a.implicated, a.fingerprint, a.saving) == \
            (b.rule, b.severity, b.level, b.implicated, b.fingerprint, b.saving)
        assert a.summary != b.summary or a.rule.startswith("OP"), a.summary  # OP: the order's own label only


def _visible(text: str, fmt: str) -> str:
    if fmt == "html":
        text = re.sub(r"(?s)<style>.*?</style>|<script>.*?</script>", " ", text)
        text = re.sub(r"<[^>]+>", " ", text)
    return text


def _without_input_data(text: str, report: Report) -> str:
    """``text`` without what is not the catalogue's wording: the input's own words (quoted texts,
    resource ids, coded displays in protocol facts), the cited documents' titles and URLs."""
    for f in report.findings:  # first: a cited title may itself hold a URL
        for label in (f.source.cite(), f.source.label):
            text = text.replace(label, " ").replace(html.escape(label), " ")
        ev = f.evidence
        for fact in ev.get("facts", ()):  # the order's wording, a SNOMED display … (protocol facts)
            if isinstance(fact, Message):
                for v in fact.params.values():
                    if isinstance(v, str) and len(v) > 3:
                        text = text.replace(v, " ")
    return re.sub(r"«[^»]*»|“[^”]*”|https?://\S+|\b(?:Patient|MedicationRequest|ServiceRequest)/\S+", " ", text)


@pytest.mark.parametrize("fmt", ["text", "html", "json"])
def test_french_rendering_of_every_rule_family_has_no_english_words(reports: dict[str, Report], fmt: str) -> None:
    fr = reports["fr"]
    assert _families(fr) == {"IX", "DU", "PR", "EQ", "ID", "OP"}
    out = render(fr.worded("en").worded("fr"), fmt)
    if fmt == "json":  # the worded fields (codes such as "critical" are data, not wording)
        data = json.loads(out)
        out = "\n".join([t for f in data["findings"] for t in (f["summary"], f["detail"])]
                        + [e["message"] for e in data["errors"]])
    out = _without_input_data(_visible(out, fmt), fr)
    found = sorted(set(ENGLISH.findall(out)))
    assert not found, found


def test_english_rendering_has_none_of_the_french_wording(reports: dict[str, Report]) -> None:
    out = _without_input_data(render(reports["fr"].worded("en"), "text"), reports["fr"])
    assert not [w for w in FRENCH_WORDING if w in out]
    assert "€" in out and re.search(r"€\d+\.\d{2}", out)  # CLDR English money, from the same report


def test_input_errors_are_worded_in_the_runs_language_after_the_fact(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"%PDF-1.7\n")
    (tmp_path / "b.json").write_text('{"resourceType": "MedicationRequest", ', encoding="utf-8")
    (tmp_path / "c.json").write_text('{"resourceType": "MedicationReqest", "id": "x"}', encoding="utf-8")
    fr = check([str(tmp_path)], as_of=AS_OF)
    en = check([str(tmp_path)], as_of=AS_OF, lang="en")
    assert fr.worded("en").to_dict()["errors"] == en.to_dict()["errors"]
    words = {e.location.rsplit("/", 1)[-1].split(" ")[0]: e.message for e in fr.errors}
    assert words["a.json"] == "ni JSON ni XML FHIR : le fichier ressemble à un PDF"
    assert words["b.json"].startswith("JSON invalide : ")
    assert words["c.json"].startswith("type de ressource FHIR inconnu « MedicationReqest »")
    assert {e.message.split(":")[0] for e in en.errors} >= {"not FHIR JSON/XML", "not valid JSON"}
    assert all(e.code is not None for e in fr.errors)


# --- the meta-test: every code emitted has its wording in both languages ---------------------------


def _codes(value: Any) -> Iterator[Message]:
    """Every message inside ``value`` (a message's extras and parameters, evidence, suggestion)."""
    if isinstance(value, Message):
        yield value
        for m in value.extra:
            yield from _codes(m)
        for p in value.params.values():
            yield from _codes(p)
    elif isinstance(value, Phrases):
        for m in value.items:
            yield from _codes(m)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _codes(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _codes(v)


def _fields(text: str) -> set[str]:
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(text) if name}


def _check_worded(code: str, tables: list[str], params: set[str] | None = None) -> list[str]:
    problems = []
    for table in tables:
        for lang in LANGS:
            if code not in catalogue(lang).get(table, {}):
                problems.append(f"{lang}.{table} lacks {code}")
        if params is not None and code in catalogue("fr").get(table, {}):
            missing = _fields(catalogue("fr")[table][code]) - params
            if missing:
                problems.append(f"{table}.{code} uses {missing}, which the emitter does not give")
    return problems


def test_every_code_the_registered_rules_emit_on_the_samples_is_worded(reports: dict[str, Report]) -> None:
    problems: list[str] = []
    seen: set[str] = set()
    for f in reports["fr"].findings:
        assert f.message is not None
        main = f.message
        problems += _check_worded(main.code, ["finding_summary", "finding_detail"], set(main.params))
        for m in [*_codes(main.extra), *_codes(list(main.params.values())), *_codes(f.evidence),
                  *_codes(f.suggestion)]:
            if m.code not in seen:
                seen.add(m.code)
                problems += _check_worded(m.code, ["finding_detail"], set(m.params))
    assert not problems, sorted(set(problems))


def _literal_codes(path: Path) -> Iterator[tuple[int, str, str, set[str] | None]]:
    """(line, call name, code, parameter names or None) of each ``Message("code", …)``, ``_err(where,
    "code", …)``, ``_fact("code", …)`` and ``_w("code")`` call with a literal code in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        name, pos = node.func.id, {"Message": 0, "_fact": 0, "_w": 0, "_err": 1}.get(node.func.id)
        if pos is None or len(node.args) <= pos:
            continue
        arg = node.args[pos]
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            continue
        params: set[str] | None = None
        if name == "Message":
            params = set()
            if len(node.args) > 1:
                d = node.args[1]
                ok = isinstance(d, ast.Dict) and all(isinstance(k, ast.Constant) for k in d.keys)
                params = {str(k.value) for k in d.keys if isinstance(k, ast.Constant)} if ok else None  # type: ignore[union-attr]
        elif name in ("_fact", "_err"):
            params = None if any(k.arg is None for k in node.keywords) else {str(k.arg) for k in node.keywords}
        else:
            params = set()
        yield node.lineno, name, arg.value, params


READER_MODULES = (*(f"fhir_input/{p.name}" for p in sorted((ROOT / "checker" / "fhir_input").glob("*.py"))),
                  "api.py", "audit/__init__.py", "audit/pipeline.py")


@pytest.mark.parametrize("path", sorted({*ROOT.glob("checker/rules/*.py"), ROOT / "checker/protocols/engine.py",
                                         *(ROOT / "checker" / m for m in READER_MODULES)}),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_literal_code_in_the_source_is_worded_in_both_languages(path: Path) -> None:
    """The codes a rule, the protocol engine or the reader builds, read from the source: a code only
    emitted by inputs the samples lack is caught too."""
    reader = str(path.relative_to(ROOT / "checker")) in READER_MODULES
    problems = []
    for line, name, code, params in _literal_codes(path):
        if name == "_fact":
            code, tables = f"OP.fact-{code}", ["finding_detail"]
        elif name == "_w":
            code, tables = f"OP.missing-{code}", ["finding_detail"]
        elif reader:
            tables = ["input_error"]
        else:
            tables = ["finding_summary", "finding_detail"] if "." not in code else ["finding_detail"]
        problems += [f"{path.name}:{line}: {p}" for p in _check_worded(code, tables, params)]
    assert not problems, problems


def test_the_meta_test_catches_a_code_without_wording() -> None:
    assert _check_worded("EQ001-no-such-code", ["finding_summary"]) == [
        "fr.finding_summary lacks EQ001-no-such-code", "en.finding_summary lacks EQ001-no-such-code"]
    assert _check_worded("EQ001", ["finding_summary"], {"product"})  # a parameter the emitter does not give

