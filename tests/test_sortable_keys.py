"""Result files of the audit and of the sharded ``check`` are merged by comparing their keys as
bytes (:func:`checker.audit.worker.sortable`): the byte order must be the order of the keys compared
as Python lists, on seeded keys made to trip it up (prefixes, empty texts, NUL, non-ASCII, astral
characters, lone surrogates, lists of every length, negative numbers)."""

from __future__ import annotations

import functools
import random
from typing import Any

from checker.audit.worker import sortable

ALPHABET = ["", "a", "b", "~", "\x00", "\x01", "é", "ÿ", "\u20ac", "\U0001f48a", "\ud800", "Patient/", "A", " ", "\t"]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(4)))


def _finding_key(rng: random.Random) -> tuple[Any, ...]:
    return (_text(rng), -rng.randrange(4), _text(rng), tuple(_text(rng) for _ in range(rng.randrange(4))),
            _text(rng))


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def test_sortable_keys_sort_as_the_lists_they_encode() -> None:
    rng = random.Random(17)
    for _ in range(40):
        keys = [_finding_key(rng) for _ in range(200)]
        keys += [k[:3] + (k[3][:-1],) + k[4:] for k in keys[:30] if k[3]]  # lists and their prefixes
        keys += [(k[0] + "\x00",) + k[1:] for k in keys[:30]]  # texts and their extensions by NUL
        by_list = sorted(range(len(keys)), key=lambda i: (list(keys[i][:3]) + [list(keys[i][3])] + [keys[i][4]], i))
        by_bytes = sorted(range(len(keys)), key=lambda i: (sortable(keys[i]), i))
        assert by_list == by_bytes
        for a, b in zip(keys, reversed(keys)):
            assert _cmp(sortable(a), sortable(b)) == _cmp(list(a[:3]) + [list(a[3]), a[4]],
                                                         list(b[:3]) + [list(b[3]), b[4]])


def test_sortable_keys_are_one_line_of_hexadecimal() -> None:
    rng = random.Random(3)
    for _ in range(500):
        key = sortable(_finding_key(rng))
        assert key.isascii() and all(c in b"0123456789abcdef" for c in key)


def test_error_keys_sort_as_their_lists() -> None:
    rng = random.Random(5)
    keys = [(_text(rng), _text(rng), _text(rng)) for _ in range(2000)]
    assert sorted(keys, key=functools.cmp_to_key(lambda a, b: _cmp(list(a), list(b)))) == \
        sorted(keys, key=sortable)
