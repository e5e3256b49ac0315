"""Findings written for less work, the same bytes: worded texts remembered by the message's value
and evidence written by orjson with typed values worded on its call-back (seeded, over every
message of the catalogue, in both languages)."""

from __future__ import annotations

import io
import pickle
import random
import string
from dataclasses import replace
from datetime import date, datetime
from enum import Enum
from typing import Any

import orjson
import pytest

from checker import check, findings
from checker.audit import sharded
from checker.findings import (
    Amount,
    Finding,
    Localized,
    Message,
    Phrases,
    Quantity,
    Report,
    Saving,
    Severity,
    Source,
    Word,
    Words,
    forget_wording,
)
from checker.formats import render
from checker.wording import LANGS, catalogue
from tests.conftest import SAMPLES, export_generator

AS_OF = "2026-01-15"
SEED = 20261205


def _fields(template: str) -> list[tuple[str, str]]:
    return [(name, spec or "") for _, name, spec, _ in string.Formatter().parse(template) if name]


def _codes(table: str) -> list[str]:
    return sorted(catalogue("fr")[table])


class _Kind(str, Enum):
    A = "a"


def _number(rng: random.Random) -> Any:
    """Numbers Python calls equal that are worded differently (1, 1.0, True; 0.0, -0.0) and others."""
    return rng.choice([1, 1.0, True, 0, 0.0, -0.0, False, 2, 2.5, 1234567.891, -3, 10**20, 0.1 + 0.2])


def _value(rng: random.Random, spec: str, depth: int = 0) -> Any:
    """A parameter of any type a rule may give (typed values, plain values, values no key can stand
    for: a list, a dict, a ``str`` subclass, a ``datetime``), confusable ones often."""
    if spec == "g":
        return _number(rng)
    word_table = rng.choice(["ix_level", "ix_theme", "severity", "category"])
    codes = sorted(catalogue("fr")[word_table])
    pick = rng.randrange(17 if depth < 2 else 15)
    if pick == 0:
        return rng.choice(["paracétamol", "Ibuprofène 400 mg", "", "1", "True", "a{b}"])
    if pick == 1:
        return _number(rng)
    if pick == 2:
        return rng.choice([date(2026, 1, 15), date(2025, 2, 1), datetime(2026, 1, 15, 0, 0), datetime(2026, 1, 15, 23, 0)])
    if pick == 3:
        return Amount(_number(rng), rng.choice(["EUR", "MAD", ""]), rng.choice([None, 0, 2, 4]))
    if pick == 4:
        return Quantity(_number(rng), rng.choice(["mg", "", "mg/ml"]), rng.choice([0, 1, 2]))
    if pick == 5:
        return Word(word_table, rng.choice(codes))
    if pick == 6:
        return Words(word_table, tuple(rng.sample(codes, min(len(codes), rng.randrange(4)))), rng.choice(["; ", ", "]))
    if pick == 7:
        return Words(word_table, list(rng.sample(codes, min(len(codes), 2))))  # type: ignore[arg-type]
    if pick == 8:
        return Localized(rng.choice(["rein", "foie"]), rng.choice(["kidney", "liver"]))
    if pick == 9:
        return [rng.choice(["a", "b"])]
    if pick == 10:
        return (rng.choice(["a", "b"]),)
    if pick == 11:
        return {"a": _number(rng)}
    if pick == 12:
        return _Kind.A
    if pick == 13:
        return None
    if pick == 14:
        return rng.choice([Amount(1, "EUR"), Amount(1.0, "EUR"), Quantity(0.0, "mg"), Quantity(-0.0, "mg")])
    return Phrases(tuple(_message(rng, rng.choice(_codes("finding_detail")), depth + 1) for _ in range(rng.randrange(3))),
                   rng.choice(["; ", ""]))


def _message(rng: random.Random, code: str, depth: int = 0) -> Message:
    """A message of ``code`` with generated parameters for every field of its wordings, and now and
    then an extra sentence."""
    fields = {}
    for table in ("finding_summary", "finding_detail"):
        for suffix in ("", ".short"):
            template = catalogue("fr").get(table, {}).get(code + suffix)
            if template:
                fields.update(dict(_fields(template)))
    params = {name: _value(rng, spec, depth) for name, spec in fields.items()}
    extra = tuple(_message(rng, rng.choice(_codes("finding_detail")), depth + 1)
                  for _ in range(rng.randrange(2) if depth < 1 else 0))
    return Message(code, params, extra)


def _worded_or_error(fn: Any, *args: Any) -> str:
    try:
        return str(fn(*args))
    except Exception as exc:  # noqa: BLE001 - a value that cannot be worded fails the same way both ways
        return f"!{type(exc).__name__}"


def _twins(v: Any) -> list[Any]:
    """Values Python calls equal to ``v`` (same hash) that may be worded differently."""
    if type(v) in (int, float, bool) and v in (0, 1):
        return [x for x in ((0, 0.0, -0.0, False) if v == 0 else (1, 1.0, True)) if repr(x) != repr(v)]
    if type(v) in (int, float) and v == int(v) and abs(v) < 2**53:
        return [float(v) if type(v) is int else int(v)]
    if type(v) is date:
        return [datetime(v.year, v.month, v.day)]
    if type(v) in (Amount, Quantity):
        return [replace(v, value=t) for t in _twins(v.value)]
    return []


def _messages(n_per_code: int, seed: int) -> list[Message]:
    """``n_per_code`` messages of every summary and detail code, each followed by its twins: the same
    message with one parameter replaced by a value equal to it in Python (``1`` / ``1.0`` / ``True``,
    ``0.0`` / ``-0.0``, a date and its midnight)."""
    rng = random.Random(seed)
    codes = sorted(set(_codes("finding_summary")) | set(_codes("finding_detail")))
    out = []
    for code in codes:
        for _ in range(n_per_code):
            m = _message(rng, code)
            out.append(m)
            out += [Message(code, {**m.params, name: twin}, m.extra) for name, v in m.params.items() for twin in _twins(v)]
    return out


@pytest.mark.parametrize("seed", [SEED, SEED + 1, SEED + 2])
def test_remembered_wording_equals_fresh_wording_over_every_catalogue_message(seed: int) -> None:
    """Every summary and detail code, 12 messages each with generated parameters, and their twins
    (:func:`_messages`), worded in both languages through the memory (after one another,
    so that a key shared by two differently worded messages would hand the second the first's words)
    and afresh: the same text or the same error."""
    forget_wording()
    messages = _messages(12, seed)
    summaries = set(_codes("finding_summary"))
    remembered, fresh = [], []
    for _ in range(2):  # the second round takes every keyed text from the memory
        for m in messages:
            for lang in LANGS:
                if m.code in summaries:
                    remembered.append(_worded_or_error(m.summary, lang))
                remembered.append(_worded_or_error(m.detail, lang))
    for _ in range(2):
        for m in messages:
            for lang in LANGS:
                if m.code in summaries:
                    fresh.append(_worded_or_error(m._summary, lang))
                fresh.append(_worded_or_error(m._detail, lang))
    assert remembered == fresh
    read = []  # a finding reads its message's remembered texts inline: fresh copies and shared messages
    for m in [*(replace(m) for m in messages), *messages]:
        for lang in LANGS:
            f = Finding.worded_from(m, lang, rule="DU001", category="duplicate", severity=Severity.INFO,
                                    source=Source("S"), patient=None, implicated=())
            if m.code in summaries:
                read.append(_worded_or_error(lambda: f.summary))
            read.append(_worded_or_error(lambda: f.detail))
    assert read == fresh
    keyed = sum(1 for m in messages if m._texts)
    assert findings._WORDED and keyed > len(messages) // 5  # the memory was used, not bypassed
    assert any(m._texts is False for m in messages)  # and bypassed for values no key stands for


def test_remembered_wording_stays_within_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(findings, "WORDED_ENTRIES", 7)
    forget_wording()
    messages = _messages(3, SEED)
    for m in messages:
        for lang in LANGS:
            assert m.detail(lang) == m._detail(lang) if not _worded_or_error(m._detail, lang).startswith("!") else True
            assert len(findings._WORDED) <= 7


def _key_or_unkeyed(key: Any, m: Message) -> Any:
    try:
        return key(m)
    except findings._Unkeyed:
        return findings._Unkeyed


def _message_key_nested(m: Message) -> tuple[Any, ...]:
    """The key of ``m``'s value made by recursion over its messages: the plain path
    :func:`findings._message_key` is held to."""
    params, extra = m.params, m.extra
    if type(m) is not Message or type(m.code) is not str or type(params) is not dict or type(extra) is not tuple:
        raise findings._Unkeyed
    keyed: list[Any] = [m.code]
    for name, value in params.items():
        if type(name) is not str:
            raise findings._Unkeyed
        keyed += (name, _value_key_nested(value))
    return (*keyed, *(_message_key_nested(e) for e in extra))


def _value_key_nested(v: Any) -> Any:
    if type(v) is Phrases:
        if type(v.items) is not tuple or type(v.sep) is not str:
            raise findings._Unkeyed
        return (Phrases, tuple([_message_key_nested(m) for m in v.items]), v.sep)
    return findings._value_key(v)


@pytest.mark.parametrize("seed", [SEED, SEED + 5])
def test_flat_message_key_tells_apart_the_values_the_nested_key_tells_apart(seed: int) -> None:
    """The flat key made in one loop (:func:`findings._message_key`) and the key made by recursion
    (:func:`_message_key_nested`), over every catalogue message with generated parameters,
    extra sentences and nested phrases, their twins and messages whose parameters or sentences are
    moved between levels: both key the same messages, and two messages have equal flat keys exactly
    when they have equal nested keys."""
    rng = random.Random(seed)
    messages = _messages(6, seed)
    moved = []
    for m in messages[:400]:  # the same values at other places: a phrase as an extra sentence and back
        items = tuple(p for v in m.params.values() if type(v) is Phrases for p in v.items)
        moved.append(Message(m.code, {k: v for k, v in m.params.items() if type(v) is not Phrases}, items + m.extra))
        moved.append(Message(m.code, {k: Phrases((), v.sep) if type(v) is Phrases else v for k, v in m.params.items()},
                             items + m.extra))
        moved.append(Message(m.code, {k: Phrases(v.items + m.extra, v.sep) if type(v) is Phrases else v
                                      for k, v in m.params.items()}, ()))
        moved.append(Message(m.code, {**m.params, "p": Phrases(m.extra)}, ()))
        moved.append(Message(m.code, {}, (Message(m.code, m.params, m.extra),)))
        moved.append(Message(m.code, {"x": Phrases((m,), rng.choice(["; ", ""]))}, ()))
    moved += [Message("A", {"p": "x"}, (Message("B", {"q": "y"}),)),  # the same texts in the same order
              Message("A", {"p": "x", "B": "q"}, (Message("y", {}),)),
              Message("A", {"p": Phrases((Message("B", {}),))}), Message("A", {"p": Phrases(())}, (Message("B", {}),))]
    pairs = set()
    for m in messages + moved + [replace(m) for m in messages[:200]]:
        flat, nested = _key_or_unkeyed(findings._message_key, m), _key_or_unkeyed(_message_key_nested, m)
        assert (flat is findings._Unkeyed) == (nested is findings._Unkeyed), m
        if flat is not findings._Unkeyed:
            pairs.add((flat, nested))
    assert len({f for f, _ in pairs}) == len({n for _, n in pairs}) == len(pairs)
    assert len(pairs) > 500


def _shared_pool(messages: list[Message], rng: random.Random) -> list[Message]:
    """Messages whose parameter values, phrases and extra sentences are the same objects as other
    messages' (rules share them between findings), in a random order: what keys and words are kept
    on a shared value must be those of its value wherever it is used."""
    values = [v for m in messages for v in m.params.values()]
    sentences = [e for m in messages for e in m.extra] + messages[: len(messages) // 4]
    out = []
    for m in messages:
        params = {k: rng.choice(values) if rng.random() < 0.4 else v for k, v in m.params.items()}
        extra = tuple(rng.choice(sentences) for _ in range(rng.randrange(3))) if sentences and rng.random() < 0.3 \
            else m.extra
        out.append(Message(m.code, params, extra))
        for k, v in params.items():  # the same phrases under another separator
            if type(v) is Phrases:
                out.append(Message(m.code, {**params, k: Phrases(v.items, "; " if v.sep != "; " else "")}, extra))
    rng.shuffle(out)
    return out


def _copied(m: Message) -> Message:
    """``m`` made again from new objects (nothing kept on them yet)."""
    def value(v: Any) -> Any:
        if type(v) is Phrases:
            return Phrases(tuple(_copied(p) if type(p) is Message else p for p in v.items)
                           if type(v.items) is tuple else v.items, v.sep)
        if type(v) in (Word, Words, Localized, Amount, Quantity):
            return replace(v)
        return v
    params = {k: value(v) for k, v in m.params.items()} if type(m.params) is dict else m.params
    return Message(m.code, params, tuple(_copied(e) for e in m.extra) if type(m.extra) is tuple else m.extra)


@pytest.mark.parametrize("seed", [SEED, SEED + 7])
def test_keys_and_words_kept_on_shared_values_equal_those_made_afresh(seed: int) -> None:
    """Keys and phrase texts are kept on the values themselves (a typed parameter, a phrase, an
    extra sentence: rules share them between findings). Over generated messages sharing those
    objects in a random order, twins included (``1`` / ``1.0`` / ``True``, ``0.0`` / ``-0.0``,
    values no key stands for): two messages get equal keys exactly when copies of them made from new
    objects get equal nested keys (:func:`_message_key_nested`), and each is worded, in both
    languages and through the memory, as its fresh copy."""
    forget_wording()
    rng = random.Random(seed)
    messages = _shared_pool(_messages(5, seed), rng)
    copies = [_copied(m) for m in messages]  # keyed afresh; worded afresh from another copy per language
    pairs = set()
    for m, c in zip(messages, copies):
        flat, nested = _key_or_unkeyed(findings._message_key, m), _key_or_unkeyed(_message_key_nested, c)
        assert (flat is findings._Unkeyed) == (nested is findings._Unkeyed), m
        assert _key_or_unkeyed(findings._message_key, m) == flat  # kept: the same key again
        if flat is not findings._Unkeyed:
            pairs.add((flat, nested))
    assert len({f for f, _ in pairs}) == len({n for _, n in pairs}) == len(pairs) > 300
    summaries = set(_codes("finding_summary"))
    for m in messages:
        for lang in LANGS:
            if m.code in summaries:
                assert _worded_or_error(m.summary, lang) == _worded_or_error(_copied(m)._summary, lang)
            assert _worded_or_error(m.detail, lang) == _worded_or_error(_copied(m)._detail, lang)
    assert any(type(v) is Phrases and v._worded is not None for m in messages for v in m.params.values())
    assert any(type(v) is Word and v._key for m in messages for v in m.params.values())


@pytest.mark.parametrize("lang", LANGS)
def test_every_rules_findings_read_through_kept_tokens_are_worded_as_fresh_copies(tmp_path: Any, lang: str) -> None:
    """The findings of the samples and of a generated export (every rule's messages, the typed
    values, phrases and sentences rules share between findings, with their tokens and texts kept on
    them), checked twice (the second check meets values keyed during the first, the tokens' table
    emptied in between): each summary and detail is the one worded from a fresh copy of its message."""
    export_generator().generate(tmp_path / "bulk", patients=150, per_patient=8, seed=19, practitioners=6)
    rules: set[str] = set()
    for _ in range(2):
        report = check([str(SAMPLES), str(tmp_path / "bulk")], as_of=AS_OF, lang=lang)
        for f in report.findings:
            if f.message is None:
                continue
            rules.add(f.rule)
            fresh = _copied(f.message)
            assert (f.summary, f.detail) == (fresh._summary(lang), fresh._detail(lang)), f
    values = [v for f in report.findings if f.message is not None for v in f.message.params.values()
              if type(v) in (Word, Words, Localized, Amount, Quantity, Phrases)]
    assert len({id(v) for v in values}) < len(values) // 2  # shared between findings: kept tokens read again
    assert len(rules) >= 15


def test_a_token_copied_to_another_process_stands_for_no_other_value() -> None:
    """A token kept on a value travels with it when the value is pickled (to the audit's worker
    processes, to Dask): there it must match no token of that process, whose table starts afresh,
    so that two different values never share words."""
    forget_wording()
    info, critical = Word("severity", "info"), Word("severity", "critical")
    findings._message_key(Message("DU001", {"substance": info}))
    copied = pickle.loads(pickle.dumps(info))
    assert info._key and copied._key and copied._key is not info._key and copied._key != info._key
    forget_wording()  # as in a new process: nothing in the table
    pairs: list[tuple[Word, Word]] = [(copied, critical), (critical, copied)]
    for a, b in pairs:
        first, second = Message("DU001", {"substance": a, "label_a": "A", "label_b": "B"}), \
            Message("DU001", {"substance": b, "label_a": "A", "label_b": "B"})
        for lang in LANGS:
            assert first.detail(lang) == first._detail(lang) and second.detail(lang) == second._detail(lang)
    assert copied._key not in findings._TOKENS.values()


def test_two_messages_equal_in_python_but_worded_differently_do_not_share_words() -> None:
    forget_wording()
    for a, b in [(1, 1.0), (1, True), (0.0, -0.0), (date(2026, 1, 15), datetime(2026, 1, 15, 0, 0)),
                 (Quantity(0.0, "mg"), Quantity(-0.0, "mg")), (Word("severity", "1"), Word("severity", True))]:  # type: ignore[arg-type]
        first, second = Message("DU001", {"substance": a, "label_a": "A", "label_b": "B"}), \
            Message("DU001", {"substance": b, "label_a": "A", "label_b": "B"})
        for lang in LANGS:
            assert _worded_or_error(first.detail, lang) == _worded_or_error(first._detail, lang)
            assert _worded_or_error(second.detail, lang) == _worded_or_error(second._detail, lang), (a, b)


def _evidence(rng: random.Random, depth: int = 0) -> Any:
    """Evidence or suggestion data as rules give it: plain values, nested containers (shared now and
    then), typed values (messages, localized texts, savings) and values :func:`_plain` leaves alone."""
    pick = rng.randrange(14 if depth < 3 else 7)
    if pick == 0:
        return rng.choice(["x", "é", 1, 2.5, True, None, -0.0])
    if pick == 1:
        return date(2026, 1, rng.randrange(1, 28))
    if pick == 2:
        return _message(rng, rng.choice(_codes("finding_detail")), 1)
    if pick == 3:
        return Localized("rein", "kidney") if rng.random() < 0.8 else Localized(Localized("a", "b"), "c")  # type: ignore[arg-type]
    if pick == 4:
        extra = rng.choice([(), (("per_unit", 0.12),), (("text", Localized("a", "b")),), (("days", 30),)])
        return Saving(rng.choice([None, 12.5, 0.0]), "EUR", "year", rng.choice([None, 30.0]), extra)
    if pick == 5:
        return rng.choice([Amount(1.5, "EUR"), Source("ANSM", "u", "2023"), _Kind.A, Word("severity", "info")])
    if pick == 6:
        return "plain"
    if pick in (7, 8, 9):
        return {f"k{i}": _evidence(rng, depth + 1) for i in range(rng.randrange(4))}
    if pick in (10, 11):
        return [_evidence(rng, depth + 1) for _ in range(rng.randrange(4))]
    return tuple(_evidence(rng, depth + 1) for _ in range(rng.randrange(3)))


class _Tagged(dict):  # type: ignore[type-arg]
    """A dict subclass (orjson writes it; the walk takes it by ``isinstance``)."""


@pytest.mark.parametrize("seed", [SEED, SEED + 7])
def test_plain_data_checked_by_orjson_equals_plain_data_walked(seed: int) -> None:
    """2,000 generated evidence and suggestion values (nested containers, typed values, subclasses,
    values orjson refuses): :func:`findings._plain` (a container written by orjson is returned as it
    is) gives what the walk in Python gives, the same object when the walk keeps it, in both languages."""
    rng = random.Random(seed)
    values = [_evidence(rng) for _ in range(2000)]
    values += [_Tagged(a=v) for v in values[:200]] + [{"big": 2**70, "v": v} for v in values[:100]]
    values += [{1: "non-text key", "v": v} for v in values[:100]] + [[[[v]]] for v in values[:100]]
    kept = 0
    for v in values:
        for lang in LANGS:
            try:
                walked = findings._plain_walked(v, lang)
            except Exception as exc:  # noqa: BLE001 - a message that cannot be worded: the same error
                with pytest.raises(type(exc)):
                    findings._plain(v, lang)
                continue
            fast = findings._plain(v, lang)
            assert repr(fast) == repr(walked) and type(fast) is type(walked)
            assert (fast is v) == (walked is v)
            kept += fast is v and type(v) in (dict, list, tuple)
    assert kept > 500


def _findings(n: int, seed: int) -> list[Finding]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        lang = rng.choice(LANGS)
        saving = rng.choice([None, Saving(12.5, "EUR", "year", 30.0, (("text", Localized("a", "b")),)),
                             Saving(1.0, "MAD", "month"), {"amount": 2.0, "currency": "EUR"}])
        suggestion = rng.choice([None, {"saving": saving, "alternative": _evidence(rng)}, {"with": "x"}])
        out.append(Finding.worded_from(
            _message(rng, rng.choice(_codes("finding_summary"))), lang, rule="DU001", category="duplicate",
            severity=rng.choice(list(Severity)), source=Source("S", "https://s", "2026"),
            patient=rng.choice([None, f"Patient/{i % 7}"]), implicated=(f"MedicationRequest/{i}",),
            level=rng.choice([None, "CI"]), suggestion=suggestion, evidence={f"e{k}": _evidence(rng) for k in range(rng.randrange(4))}, key=str(i)))
    return out


@pytest.mark.parametrize("option", [0, orjson.OPT_SORT_KEYS, orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS])
def test_a_finding_written_from_its_typed_data_equals_its_plain_data_written(option: int) -> None:
    """400 seeded findings with generated evidence and suggestions: ``to_json`` gives the bytes of
    ``orjson.dumps(to_dict())``, or the same error."""
    for f in _findings(400, SEED):
        try:
            plain = orjson.dumps(f.to_dict(), option=option)
        except Exception as exc:  # noqa: BLE001 - then the same error both ways
            with pytest.raises(type(exc)):
                f.to_json(option)
            continue
        assert f.to_json(option) == plain


def test_a_report_written_from_typed_data_equals_its_plain_data_written() -> None:
    fs = [f for f in _findings(300, SEED + 3) if _writable(f)]
    for lang in LANGS:
        report = Report("pertinence", "0", (), AS_OF, "fr", findings.InputCounts(), [f.worded(lang) for f in fs], [],
                        lang=lang)
        option = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        assert report.to_json(option) == orjson.dumps(report.to_dict(), option=option)
    mixed = Report("pertinence", "0", (), AS_OF, "fr", findings.InputCounts(), fs, [])  # findings in both languages
    assert mixed.to_json() == orjson.dumps(mixed.to_dict())


def _writable(f: Finding) -> bool:
    try:
        orjson.dumps(f.to_dict())
    except Exception:  # noqa: BLE001
        return False
    return True


@pytest.mark.parametrize("lang", LANGS)
def test_json_and_ndjson_of_the_samples_equal_their_plain_data_written(lang: str) -> None:
    report = check(str(SAMPLES), as_of=AS_OF, lang=lang)
    option = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    assert render(report, "json") == orjson.dumps(report.to_dict(), option=option).decode() + "\n"
    assert render(report, "ndjson") == "".join(
        orjson.dumps(f.to_dict(), option=orjson.OPT_SORT_KEYS).decode() + "\n" for f in report.sorted_findings())


def test_streamed_report_written_in_small_blocks_equals_the_plain_report(tmp_path: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The sharded writer (findings spilled, merged and written in blocks) gives the bytes of the
    whole report's plain data written, whatever the block size."""
    export_generator().generate(tmp_path / "export", patients=40, per_patient=10, seed=17)
    whole = check([str(tmp_path / "export")], as_of=AS_OF, lang="en")
    plain = orjson.dumps(whole.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    for block in (1, 700, 1 << 20):
        monkeypatch.setattr(sharded, "WRITE_BLOCK", block)
        out = io.BytesIO()
        sharded.write_sharded_json([str(tmp_path / "export")], out, as_of=AS_OF, lang="en", shards=3)
        assert out.getvalue() == plain, block


def test_findings_sorted_by_their_spill_keys_are_in_report_order() -> None:
    """Seeded findings whose patients, rules, lines and severities often coincide (texts that are
    prefixes of one another, with NUL bytes, accents, the ``~`` a missing patient sorts as; equal
    findings): sorted by the sharded writer's byte keys (:func:`sharded.sorted_by_key`), they are in
    :meth:`Report.sorted_findings` order, equal ones kept in their order."""
    from checker.audit.worker import finding_sort_key

    rng = random.Random(SEED)
    texts = ["", "a", "ab", "a\x00", "a\x00b", "~", "é", "Patient/1", "Patient/10", "Patient/2", "\uffff", "z" * 40]
    fs = []
    for _ in range(300):
        implicated = tuple(rng.choice(texts) for _ in range(rng.randrange(4)))
        fs.append(Finding(rule=rng.choice(["DU001", "DU00", "IX001", "a"]), category="duplicate",
                          severity=rng.choice(list(Severity)), summary="s", detail="d", source=Source("S"),
                          patient=rng.choice([None, *texts]), implicated=implicated, key=rng.choice(["", "k"])))
    fs += [replace(f) for f in fs[:50]]  # equal findings: a stable sort keeps their order
    report = Report("pertinence", "0", (), AS_OF, "fr", findings.InputCounts(), fs, [])
    keyed = sharded.sorted_by_key(fs)
    assert [id(f) for _, f in keyed] == [id(f) for f in report.sorted_findings()]
    assert [k for k, _ in keyed] == [finding_sort_key(f) for _, f in keyed]


def _slots(f: Finding) -> list[Any]:
    return [repr(getattr(f, n)) if n not in ("summary", "detail") else
            repr((findings._SUMMARY_SLOT if n == "summary" else findings._DETAIL_SLOT).__get__(f, Finding))
            for n in Finding.__slots__]


def test_findings_set_field_by_field_equal_findings_made_by_the_constructor() -> None:
    """:func:`findings.finding_of` (every rule's finding) against ``Finding.worded_from`` over seeded
    fields (lines unsorted, repeated, one or none; a category or message that the constructor
    refuses): the same value in every slot, the same words and bytes once written, the same error."""
    rng = random.Random(SEED)
    lines = ["MedicationRequest/b", "MedicationRequest/a", "MedicationRequest/a", "ServiceRequest/1", ""]
    compared = 0
    for i in range(600):
        message = rng.choice([_message(rng, rng.choice(["DU001", "IX001", "EQ001"])), None])
        implicated: Any = tuple(rng.sample(lines, rng.randrange(4)))
        if i % 50 == 0:
            implicated = list(implicated)
        fields: dict[str, Any] = {
            "rule": rng.choice(["DU001", "IX001"]), "category": rng.choice(["duplicate", "interaction", "x"]),
            "severity": rng.choice(list(Severity)), "source": Source("S", "u", "e"),
            "patient": rng.choice([None, "Patient/1"]), "implicated": implicated, "level": rng.choice([None, "CI"]),
            "suggestion": rng.choice([None, {"with": "x"}]), "evidence": rng.choice([{}, {"a": 1}]),
            "key": rng.choice(["", "k"])}
        lang = rng.choice(LANGS)
        try:
            plain = Finding.worded_from(message, lang, **fields)
        except Exception as exc:  # noqa: BLE001 - refused both ways
            with pytest.raises(type(exc)):
                findings.finding_of(message, lang, **fields)
            continue
        fast = findings.finding_of(message, lang, **fields)
        assert type(fast) is Finding and _slots(fast) == _slots(plain)
        assert _worded_or_error(fast.to_json) == _worded_or_error(plain.to_json)
        assert _slots(fast) == _slots(plain) and fast.fingerprint == plain.fingerprint
        compared += 1
    assert compared > 150


@pytest.mark.parametrize("lang", LANGS)
def test_text_with_details_wrapped_once_per_report_equals_each_detail_wrapped(lang: str,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The text format wraps each distinct detail once per report: over seeded findings (details
    repeated, with line breaks, long words, in both languages) and the samples, the same text as
    wrapping every finding's detail afresh."""
    from checker.formats import text

    fs = [f for f in _findings(300, SEED + 13) if _writable(f)]
    fs += [replace(f, summary="s", detail=rng_detail, message=None) for f, rng_detail in
           zip(fs[:60], ["a " * 80 + "\n\n" + "b" * 120, "  x\n y  ", "", "word " * 30] * 15)]
    reports = [Report("pertinence", "0", (), AS_OF, "fr", findings.InputCounts(), [f.worded(lang) for f in fs], [],
                      lang=lang), check(str(SAMPLES), as_of=AS_OF, lang=lang)]
    remembered = [render(r, "text") for r in reports]
    plain_finding = text._finding
    monkeypatch.setattr(text, "_finding", lambda f, lang, paint, wrapped=None: plain_finding(f, lang, paint))
    assert remembered == [render(r, "text") for r in reports]
    assert len(remembered[0]) > 10_000


def _add_savings_one_by_one(totals: dict[str, Any], fs: list[Finding]) -> None:
    """The plain path of :func:`findings.add_savings`: each amount added to its cells as a fraction."""
    from fractions import Fraction

    for f in fs:
        saving = f.saving
        if saving is None:
            continue
        amount = Fraction(float(saving.yearly))
        subst = str(f.evidence.get("substance", "")) or "?"
        for axis, key in (("total", ""), ("by_rule", f.rule), ("by_substance", subst)):
            cell = totals.setdefault(axis, {}).setdefault(key, {})
            cell[saving.currency] = cell.get(saving.currency, Fraction(0)) + amount


def _ordered(d: Any) -> Any:
    return [(k, _ordered(v)) for k, v in d.items()] if isinstance(d, dict) else (type(d), d)


def test_savings_summed_per_cell_equal_savings_added_one_by_one() -> None:
    """Seeded findings with savings of every size (tiny, huge, negative, zero, per year or not, given
    as a dict), several currencies, rules and substances, added in batches to running totals: the
    same exact totals, cells made in the same order, as adding each amount in turn."""
    rng = random.Random(SEED)
    amounts = [0.0, -0.0, 0.1, 0.2, 1e-300, 5e-324, 1e300, -12.5, 123456.789, 1 / 3, 2.0**60, 7]
    batched: dict[str, Any] = {}
    one_by_one: dict[str, Any] = {}
    for _ in range(40):
        fs = []
        for i in range(rng.randrange(30)):
            cur = rng.choice(["EUR", "MAD", ""])
            saving = rng.choice([Saving(rng.choice(amounts), cur, "year", rng.choice([None, rng.choice(amounts)])),
                                 {"amount": rng.choice(amounts), "currency": cur, "per_year": rng.choice(amounts)},
                                 Saving(None, cur), None])
            fs.append(Finding(rule=rng.choice(["EQ001", "EQ002"]), category="cheaper-equivalent",
                              severity=Severity.INFO, summary="s", detail="d", source=Source("S"), patient=None,
                              implicated=(str(i),), suggestion=None if saving is None else {"saving": saving},
                              evidence=rng.choice([{}, {"substance": rng.choice(["a", "b", "", 0])}])))
        findings.add_savings(batched, fs)
        _add_savings_one_by_one(one_by_one, fs)
        assert _ordered(batched) == _ordered(one_by_one)
    assert findings.savings_dict(batched) == findings.savings_dict(one_by_one) and batched["by_substance"]


@pytest.mark.parametrize("fmt", ["json", "ndjson", "text", "csv"])
def test_bytes_written_to_a_file_are_the_rendered_text_encoded(fmt: str) -> None:
    from checker.formats import render_bytes

    report = check(str(SAMPLES), as_of=AS_OF)
    assert render_bytes(report, fmt) == render(report, fmt).encode("utf-8")
    assert render_bytes(report, fmt, lang="en") == render(report, fmt, lang="en").encode("utf-8")
