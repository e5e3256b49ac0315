"""Meta-tests over the rule registry: ids, documentation, sources, samples."""

from __future__ import annotations

import pytest

from checker.findings import CATEGORIES
from checker.registry import RULE_ID, all_rules, rule, select_rules
from checker.findings import Source
from tests.conftest import SAMPLES

RULES = all_rules()


def test_registry_is_not_empty() -> None:
    assert RULES, "no rule registered"


@pytest.mark.parametrize("r", RULES, ids=lambda r: r.id)
def test_rule_is_well_formed(r) -> None:  # type: ignore[no-untyped-def]
    assert RULE_ID.match(r.id)
    assert r.category in CATEGORIES
    assert r.doc and len(r.doc.splitlines()[0]) <= 100, "docstring needs a one-line title"
    assert len(r.doc) > 80, "docstring must give rationale and source, not just a title"
    assert r.source.label and (r.source.url or r.source.edition), "rule must cite a source with URL or edition"


@pytest.mark.parametrize("r", RULES, ids=lambda r: r.id)
def test_rule_has_samples(r) -> None:  # type: ignore[no-untyped-def]
    folder = SAMPLES / "rules" / r.id
    fails = list(folder.glob("fail-*.json"))
    passes = list(folder.glob("pass-*.json"))
    assert fails, f"{r.id} has no fail-*.json sample in {folder}"
    assert passes, f"{r.id} has no pass-*.json sample in {folder}"


def test_sample_folders_name_existing_rules() -> None:
    known = {r.id for r in RULES}
    for folder in (SAMPLES / "rules").iterdir():
        if folder.is_dir():
            assert folder.name in known, f"samples for unknown rule {folder.name}"


def test_ids_are_unique_and_bad_ids_refused() -> None:
    assert len({r.id for r in RULES}) == len(RULES)
    with pytest.raises(ValueError, match="malformed"):
        rule("X1", name="x", category="dosage", severity="info", source=Source("s", "u"))(lambda call: [])
    taken = RULES[0]

    def other(call):  # type: ignore[no-untyped-def]
        """A different function claiming an existing id must be refused."""
        return []

    with pytest.raises(ValueError, match="registered twice"):
        rule(taken.id, name="x", category="dosage", severity="info", source=Source("s", "u"))(other)


def test_select_and_ignore_by_prefix() -> None:
    first = RULES[0].id
    assert [r.id for r in select_rules([first])] == [first]
    assert first not in {r.id for r in select_rules(None, [first])}
    with pytest.raises(ValueError, match="no rule matches"):
        select_rules(["ZZ999"])
