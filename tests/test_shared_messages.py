"""Messages built once per value by the rules (``checker.memo.Built``) word what fresh messages word.

IX001, PR005, EQ001 and EQ002 hand the same message object to the findings that say the same thing
(a bulk export repeats a pair of medications, a ceiling passed, a medication's advice thousands of
times), so the output words it once. Each is checked against the rule building a fresh message per
finding, on seeded records over the whole referential (every thesaurus substance, every max-dose row,
every priced specialty), in French and English: the same findings, summaries, details and JSON bytes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from checker import memo
from checker.memo import Built, forget_request_words
from checker.model import PatientRecord
from checker.referentials import default_referentials
from checker.registry import RunSettings, get_rule
from checker.rules import patient_risks
from tests.test_iatro_support import record
from tests.test_pair_judgement import _atc_only, _ix_pool, _random_orders
from tests.test_rule_fast_paths import _risk_records

AS_OF = date(2026, 1, 15)


def _worded(rule_ids: list[str], records: list[PatientRecord], lang: str) -> tuple[list[Any], int, int]:
    """Each finding's JSON bytes, summary and detail; the number of findings with a message and of
    distinct message objects among them."""
    refs = default_referentials()
    settings = RunSettings(as_of=AS_OF, lang=lang)
    out: list[Any] = []
    messages: list[object] = []
    for rec in records:
        shared: dict[object, object] = {}
        for rule_id in rule_ids:
            for f in get_rule(rule_id).run(rec, settings, refs, shared):
                out.append((f.to_json(), f.summary, f.detail))
                if f.message is not None:
                    messages.append(f.message)
    forget_request_words()
    return out, len(messages), len({id(m) for m in messages})


def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every message built afresh for its finding."""
    monkeypatch.setattr(Built, "get", lambda self, key, build, *args, keep=None: build(*args))


def _compare(monkeypatch: pytest.MonkeyPatch, rule_ids: list[str], records: list[PatientRecord]) -> tuple[int, int]:
    """Shared and fresh messages word alike, in both languages, with the memo empty and full; returns
    the number of distinct message objects of the findings, shared and fresh."""
    for lang in ("fr", "en"):
        shared, n, distinct = _worded(rule_ids, records, lang)
        again, _, _ = _worded(rule_ids, records, lang)
        with monkeypatch.context() as m:
            _fresh(m)
            fresh, n_fresh, distinct_fresh = _worded(rule_ids, records, lang)
        assert shared == fresh
        assert again == fresh
        assert n == n_fresh
    return distinct, distinct_fresh


def _ix_records(seed: int, n: int) -> list[PatientRecord]:
    rng = random.Random(seed)
    pool = _ix_pool(seed)
    made = []
    for p in range(n):  # the same pool's medication objects over many records, as in a bulk reading
        rec = record(*_random_orders(rng, pool, rng.randrange(2, 16), _atc_only))
        made.append(rec)
    return made


@pytest.mark.parametrize("seed", range(6))
def test_ix001_messages_shared_word_as_fresh_ones(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    shared, fresh = _compare(monkeypatch, ["IX001"], _ix_records(seed, 40))
    assert fresh > 20 and shared < fresh, (shared, fresh)


@pytest.mark.parametrize("seed", range(4))
def test_pr005_messages_shared_word_as_fresh_ones(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    shared, fresh = _compare(monkeypatch, ["PR005"], _risk_records(seed, 300))
    assert fresh > 20 and shared < fresh, (shared, fresh)


def test_cheaper_messages_shared_word_as_fresh_ones_on_every_priced_specialty(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_dispatch import _priced_export

    records = list(_priced_export())  # each specialty about once: read twice, as a bulk export repeats them
    shared, fresh = _compare(monkeypatch, ["EQ001", "EQ002"], records + records)
    assert fresh > 900 and shared < fresh / 2, (shared, fresh)


def test_figures_equal_in_value_but_not_in_type_get_their_own_message() -> None:
    """``1`` and ``1.0`` mg are worded apart: they never share a message."""
    over: Callable[[object], list[Any]] = lambda got: [("per_day", got, 4000.0, "adult")]
    a = patient_risks._shared_over_message("paracétamol", "DOLIPRANE", over(5000))
    b = patient_risks._shared_over_message("paracétamol", "DOLIPRANE", over(5000.0))
    c = patient_risks._shared_over_message("paracétamol", "DOLIPRANE", over(5000.0))
    assert a is not b and b is c
    assert a.text("fr", "finding_detail") == patient_risks._over_message("paracétamol", "DOLIPRANE", over(5000)).text(
        "fr", "finding_detail")


def test_built_values_are_bounded_and_forgotten_with_the_request_words(monkeypatch: pytest.MonkeyPatch) -> None:
    built = Built()
    monkeypatch.setattr(memo, "MAX_ENTRIES", 3)
    for i in range(10):
        assert built.get(("k", i), int, i) == i
        assert len(built) <= 3
    forget_request_words()
    assert len(built) == 0
