"""Observation code lists and validity windows live in one place, the facts tables
(``referentials/facts/clinical-facts.json``): the rules, the thesaurus conditions and the CDS Hooks
prefetch templates read them from there."""

from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from checker.referentials import default_referentials, referentials_dir

ROOT = Path(__file__).resolve().parent.parent
TABLES = default_referentials().get("clinical-facts")
LOINC_SHAPE = re.compile(r"\d{1,5}-\d")
"""A LOINC code: digits, a hyphen, the check digit."""


def _asked(template: str) -> set[tuple[str, str]]:
    """``(system, code)`` pairs an Observation search template asks for."""
    query = parse_qs(urlsplit("https://ehr.example/fhir/" + template).query)
    return {tuple(c.rsplit("|", 1)) for v in query.get("code", []) for c in v.split(",")}  # type: ignore[misc]


def test_every_observation_code_the_rules_read_is_requested_by_the_prefetch() -> None:
    from checker.service.prefetch import KEY_TYPE, PREFETCH

    asked: set[tuple[str, str]] = set()
    for key, template in PREFETCH.items():
        if KEY_TYPE[key] == "Observation":
            asked |= _asked(template)
    read = {(spec.uri, code) for spec in TABLES.observations.values() for code in spec.codes}
    assert read, "the facts tables declare the observations the rules read"
    missing = sorted(read - asked)
    assert not missing, f"observation codes the rules read but the prefetch never asks for: {missing}"
    assert ("http://loinc.org", "3141-9") in asked and ("http://loinc.org", "82810-3") in asked


def test_every_observation_code_the_protocols_read_is_requested_by_the_prefetch() -> None:
    """The protocol rules read observations too (temperature, Glasgow score, TSH …): each exact code
    their observation criteria name is asked for (a criterion worded only by a text pattern cannot be)."""
    from checker.service.prefetch import KEY_TYPE, PREFETCH

    asked: set[tuple[str, str]] = set()
    for key, template in PREFETCH.items():
        if KEY_TYPE[key] == "Observation":
            asked |= {(s, c) for s, c in _asked(template)}
    named = {(c.system, c.code) for p in default_referentials().get("protocols").protocols
             for crit in p.criteria.values() for t in crit.tests if t.kind == "observation"
             for c in t.matcher.codes if not c.prefix}
    assert ("LOINC", "8310-5") in named  # body temperature (low back pain imaging)
    uris = {"LOINC": "http://loinc.org", "SNOMED": "http://snomed.info/sct"}
    missing = sorted((uris[s], c) for s, c in named if (uris[s], c) not in asked)
    assert not missing, f"observation codes the protocols read but the prefetch never asks for: {missing}"


def test_each_observation_template_asks_for_its_own_kinds_only() -> None:
    """A weight alone must not pass for a renal result: each key asks for the codes of its kinds."""
    from checker.service.prefetch import OBSERVATION_CODES, PREFETCH

    for key, codes in OBSERVATION_CODES.items():
        assert {c for _, c in _asked(PREFETCH[key])} == codes, key
        own = {c for spec in TABLES.observations.values() if spec.request == key for c in spec.codes}
        if not TABLES.requests[key].protocols:
            assert codes == own, key
    assert {spec.request for spec in TABLES.observations.values()} <= set(OBSERVATION_CODES)
    assert set(TABLES.requests) == set(OBSERVATION_CODES)


def _string_literals(path: Path) -> list[tuple[int, str]]:
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
        if tok.type == tokenize.STRING:
            body = tok.string.lstrip("rbuRBUfF")
            body = body.strip("\"'")
            out.append((tok.start[0], body))
    return out


def test_no_loinc_code_list_is_written_in_the_package() -> None:
    """Observation codes are data: no LOINC-shaped string literal in ``checker/`` (the facts tables
    loader reads them from the JSON file)."""
    found = [f"{p.relative_to(ROOT)}:{line}: {text!r}"
             for p in sorted((ROOT / "checker").rglob("*.py"))
             for line, text in _string_literals(p) if LOINC_SHAPE.fullmatch(text)]
    assert not found, "LOINC codes written in code (move them to referentials/facts/clinical-facts.json):\n" + \
        "\n".join(found)


def test_the_literal_scan_would_see_a_code_list() -> None:
    sample = ROOT / "tests" / "test_facts_tables.py"
    assert any(LOINC_SHAPE.fullmatch(t) for _, t in _string_literals(sample))  # "3141-9" above


RAW = json.loads((referentials_dir() / "facts" / "clinical-facts.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("kind", sorted(RAW["observations"]))
def test_every_observation_kind_has_a_validity_window_with_its_basis(kind: str) -> None:
    window = RAW["observations"][kind].get("window")
    assert window in RAW["validity_days"], f"{kind}: no validity window named in the data"
    entry = RAW["validity_days"][window]
    assert isinstance(entry["days"], int) and entry["days"] > 0
    basis = entry["basis"].lower()
    assert "project convention" in basis or "source:" in basis, f"{window}: say its source or that it is a convention"
    assert TABLES.observation_window(kind) == entry["days"]


def test_every_window_is_used_by_an_observation_kind() -> None:
    used = {spec["window"] for spec in RAW["observations"].values()}
    assert set(RAW["validity_days"]) == used


READERS = re.compile(r"\brecord\.(?:conditions|allergies|observations)\b")
STILL_DIRECT: set[str] = set()
"""Files still walking the record themselves (none: the criteria language's observation leaf asks the
facts layer, :func:`checker.facts.observations_on`)."""


def test_only_the_facts_layer_walks_the_patients_conditions_allergies_and_observations() -> None:
    found = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "checker").rglob("*.py")
                   if READERS.search(p.read_text(encoding="utf-8")))
    outside = [f for f in found if not f.startswith("checker/facts/") and not f.startswith("checker/fhir_input/")]
    assert set(outside) <= STILL_DIRECT, f"read the record through checker.facts, not directly: {outside}"
