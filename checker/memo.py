"""Memoisation of pure functions of long-lived, immutable objects.

Rules ask the same questions again and again about the same drug index, the same identified
medication or the same referential row (a bulk export names a few hundred medications across
millions of lines). These objects are immutable once built but not cheaply hashable, so results
are kept per object *identity*. Each entry holds the object itself, so the object stays alive and
its id cannot be given to another object while the entry exists: a cached answer can never be
returned for the wrong object. Caches are bounded (cleared when full).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

MAX_ENTRIES = 20_000
"""Entries per memo: far more than the distinct medications of a bulk run, and a small bound on what a
long-running service keeps alive (its requests bring new objects each time)."""


def _memoise(func: F, *, all_by_identity: bool) -> F:
    """``func`` memoised: every argument kept by identity (``all_by_identity``), or only the first
    one and the others by value. Each entry keeps the arguments alive. The key is computed inline:
    rules ask these memos hundreds of thousands of times per bulk run."""
    cache: dict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = {}
    lock = threading.Lock()

    def store(args: tuple[Any, ...], key: tuple[Any, ...]) -> Any:
        value = func(*args)
        with lock:
            if len(cache) >= MAX_ENTRIES:
                cache.clear()
            cache[key] = (args, value)
        return value

    def two(a: Any, b: Any) -> Any:  # the common shapes, without packing and mapping the arguments
        key = (id(a), id(b))
        hit = cache.get(key)
        return hit[1] if hit is not None else store((a, b), key)

    def three(a: Any, b: Any, c: Any) -> Any:
        key = (id(a), id(b), id(c))
        hit = cache.get(key)
        return hit[1] if hit is not None else store((a, b, c), key)

    def every(*args: Any) -> Any:
        key = tuple(map(id, args))
        hit = cache.get(key)
        return hit[1] if hit is not None else store(args, key)

    def first(*args: Any) -> Any:
        key = (id(args[0]), *args[1:])
        hit = cache.get(key)
        return hit[1] if hit is not None else store(args, key)

    arity = _fixed_arity(func)
    wrapper: Callable[..., Any] = first if not all_by_identity else two if arity == 2 else three if arity == 3 else every
    functools.update_wrapper(wrapper, func)
    wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _fixed_arity(func: Callable[..., Any]) -> int | None:
    """The number of parameters of ``func`` when all are plain positional ones without default."""
    params = inspect.signature(func).parameters.values()
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if all(p.kind in plain and p.default is inspect.Parameter.empty for p in params):
        return len(params)
    return None


_REQUEST_WORDS: list[Callable[[], None]] = []


def holds_request_words(clear: Callable[[], None]) -> Callable[[], None]:
    """Register ``clear``, which empties a memo keyed by the *values* of what a request brings (an
    order's reason, a worded finding): :func:`forget_request_words` calls it. Returns ``clear``."""
    _REQUEST_WORDS.append(clear)
    return clear


def forget_request_words() -> None:
    """Empty every memo that holds the words of past requests (see :func:`holds_request_words`).
    Called at the end of each check and after each answer of the CDS service, so that a
    long-running process keeps no prescriber's text of a request it has answered; within one check
    (a bulk chunk, a request) the memos still serve their repeats."""
    for clear in _REQUEST_WORDS:
        clear()


def by_identity(func: F) -> F:
    """Memoise ``func(obj, *args)``, pure in ``obj`` (kept by identity) and hashable ``args``."""
    return _memoise(func, all_by_identity=False)


def by_identities(func: F) -> F:
    """Memoise ``func(*objs)``, pure in every argument, each kept by identity (none need be
    hashable: referential rows holding dicts, identified medications…)."""
    return _memoise(func, all_by_identity=True)


class Built:
    """Values built once per key the caller makes, bounded (emptied when full, and with the words of
    each request: :func:`holds_request_words`). For a rule's message repeated over a bulk export (the
    same pair, the same ceiling, the same labels): findings sharing one message object are worded once,
    as a message keeps its texts. The key must tell apart every value *and type* the value is built
    from (numbers by ``repr``); ``keep`` holds the objects whose ids are in the key, so that an id
    cannot be reused under an entry."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[object, tuple[object, Any]] = {}
        holds_request_words(self._entries.clear)

    def get(self, key: object, build: Callable[..., Any], *args: Any, keep: object = None) -> Any:
        """The value of ``key``, built by ``build(*args)`` when not kept."""
        hit = self._entries.get(key)
        if hit is None:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            hit = self._entries[key] = (keep, build(*args))
        return hit[1]

    def __len__(self) -> int:
        return len(self._entries)


_GC_LOCK = threading.Lock()
_GC_USERS = 0
_GC_SAVED: tuple[int, ...] = ()
RELAXED_GC_THRESHOLDS = (200_000, 20, 100)
BULK_RESOURCES = 5_000
"""Inputs of at least this many resources are read and checked under :func:`relaxed_gc`; smaller
ones (a CDS Hooks request, one patient's export) keep the host's collector settings."""


@contextlib.contextmanager
def relaxed_gc() -> Iterator[None]:
    """Run a bulk job (reading an input, checking an audit chunk) with the cyclic garbage collector
    triggered less often. Not for request handlers: a service under steady load would never get its
    thresholds back.

    Reading an export keeps every extracted object alive until the report is built, so the
    default thresholds (a collection every 700 allocations) rescan a growing heap for nothing:
    reading the 50,000-line file of ``benchmarks/ingest_bench.py`` took 2.5 s with them and 1.7 s
    with a collection every 50,000 allocations; every 200,000, reading the 200,000-line file costs
    about 0.15 s less again (a young collection rescans every order extracted since the last one). Collection still runs, and the thresholds are restored when the last concurrent
    job ends.
    """
    global _GC_USERS, _GC_SAVED
    with _GC_LOCK:
        if _GC_USERS == 0:
            _GC_SAVED = gc.get_threshold()
            gc.set_threshold(*RELAXED_GC_THRESHOLDS)
        _GC_USERS += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_USERS -= 1
            if _GC_USERS == 0 and gc.get_threshold() == RELAXED_GC_THRESHOLDS:  # unless the host changed them
                gc.set_threshold(*_GC_SAVED)
