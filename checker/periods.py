"""Treatment periods of prescription lines: when is a MedicationRequest being taken?

Two lines interact, duplicate each other or accumulate only while both are taken. This module
turns a :class:`~checker.model.MedicationOrder` into an inclusive day interval.

Conventions (documented once, used by every rule family):

* **Start** = the earliest ``timing.repeat.boundsPeriod.start`` of its dosages, else the start of
  ``dispenseRequest.validityPeriod``, else ``authoredOn``. Unknown → ``None`` ("began at an
  unknown day, on or before ``as_of``").
* **End** (inclusive), first that applies:

  1. the latest ``boundsPeriod.end`` of its dosages, or start + ``boundsDuration`` (days) − 1;
  2. start + ``expectedSupplyDuration`` × (1 + ``numberOfRepeatsAllowed``) − 1;
  3. the end of ``dispenseRequest.validityPeriod`` (the prescription cannot be filled later);
  4. otherwise the line is **open-ended**: ``None``.

* **Open-ended relative to ``as_of``**: a line with no computable end is taken as running up to
  ``as_of`` (the day the check treats as "today"), or up to its own start when it starts after
  ``as_of`` (a future line is a one-day interval at its start). A line with no start is taken as
  having begun before anything else. So two open-ended current lines always overlap, and a line
  that ended before the other began never does.
* **Ended lines** (status in :data:`~checker.model.ENDED`: ``completed``, ``stopped``, ``ended``)
  were taken and are over: they count over their period as written. Without a written end, an
  ended line is proven taken on its first day only: that day is its interval (two lines written
  together still overlap; an open-ended past line is not stretched to ``as_of``). A ``stopped`` or
  ``ended`` line was halted on a day the record does not give, on or before ``as_of`` (the record
  as it stands then says it is stopped): that unknown stop is an open end, closed the day before
  ``as_of`` — so a line stopped today does not meet today's new line (a switch), and a later
  ``as_of`` can only lengthen it up to its written end, as for any open period. A ``completed``
  line ("all actions implied have occurred") runs to its written end whatever ``as_of``.
* Lines whose status is in :data:`~checker.model.NOT_TAKEN` (``cancelled``, ``entered-in-error``,
  ``revoked``, and the records of a drug not taken: ``not-taken``, ``not-done``, ``declined``,
  ``not-taking``) do not count (:func:`counts` is ``False``) and never overlap anything; their
  period is still computed by :func:`treatment_period`.
* Dispenses, administrations and statements carry their period as the line's dispense (see
  ``checker.fhir_input._medication_use``): an administration at one point in time covers that
  day only.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import date, timedelta

from checker.model import ENDED, NOT_TAKEN, MedicationOrder

ONE_DAY = timedelta(days=1)

STOPPED = frozenset({"stopped", "ended"})
"""Ended lines halted before their written end, on a day the record does not give."""


def counts(order: MedicationOrder) -> bool:
    """True when the line is (or was) taken: its status is not cancelled, entered in error, not taken …
    (an ended line counts over the days it was taken)."""
    return order.status not in NOT_TAKEN


def _days(start: date, n_days: float) -> date:
    """Inclusive end of an ``n_days``-long interval beginning on ``start`` (at least one day).

    Absurd durations or dates near the calendar's end are clamped to ``date.max`` (never raise).
    """
    try:
        days = max(1, math.ceil(n_days)) - 1
        return start + timedelta(days=days)
    except (OverflowError, ValueError):
        return date.max


def treatment_start(order: MedicationOrder) -> date | None:
    """First day the line is taken (see module conventions); ``None`` when unknown."""
    starts = [d.bounds_start for d in order.dosages if d.bounds_start is not None]
    if starts:
        return min(starts)
    if order.dispense is not None and order.dispense.validity_start is not None:
        return order.dispense.validity_start
    return order.authored_on


def treatment_period(order: MedicationOrder, as_of: date) -> tuple[date | None, date | None]:
    """``(start, end)`` of the line, both inclusive; ``None`` = unknown start / open end.

    ``as_of`` is used only when the start is unknown and a duration is given: the duration is
    then counted from ``as_of`` if the order has no date at all (a CDS Hooks draft being
    prescribed now). Use :func:`effective_interval` for comparisons.
    """
    return _periods(order, as_of)[0]


def _periods(order: MedicationOrder, as_of: date) -> tuple[tuple[date | None, date | None], tuple[date, date]]:
    """Period and comparison interval of the line, computed once per ``as_of`` (memo on the order)."""
    memo = order.period_memo
    if memo is not None and memo[0] == as_of:
        return memo[1], memo[2]
    period = _treatment_period(order, as_of)
    interval = _effective_interval(period, as_of, order.status)
    order.period_memo = (as_of, period, interval)
    return period, interval


def _treatment_period(order: MedicationOrder, as_of: date) -> tuple[date | None, date | None]:
    start = treatment_start(order)
    origin = start if start is not None else (as_of if order.draft else None)
    if origin is not None and start is None:
        start = origin
    ends = [d.bounds_end for d in order.dosages if d.bounds_end is not None]
    if ends:
        return start, max(ends)
    if origin is not None:
        durations = [d.bounds_days for d in order.dosages if d.bounds_days]
        if durations:
            return start, _days(origin, max(durations))
        disp = order.dispense
        if disp is not None and disp.supply_days:
            return start, _days(origin, disp.supply_days * (1 + max(0, disp.repeats)))
    if order.dispense is not None and order.dispense.validity_end is not None:
        return start, order.dispense.validity_end
    return start, None


def effective_interval(order: MedicationOrder, as_of: date) -> tuple[date, date]:
    """The closed interval used to compare lines, open ends resolved against ``as_of``."""
    return _periods(order, as_of)[1]


def _effective_interval(period: tuple[date | None, date | None], as_of: date, status: str = ""
                        ) -> tuple[date, date]:
    start, end = period
    lo = start or date.min
    if status in ENDED:
        # taken and over: the written end, else the first day only; a stopped line stopped by ``as_of``
        end = end or lo
        if status in STOPPED and as_of > date.min:
            end = min(end, max(lo, as_of - timedelta(days=1)))
    elif end is None:
        end = max(as_of, lo)
    if end < lo:  # inconsistent input (end before start): keep the start day only
        end = lo
    return lo, end


def is_current(order: MedicationOrder, as_of: date) -> bool:
    """True when the line counts and ``as_of`` falls within its period."""
    if not counts(order):
        return False
    lo, hi = effective_interval(order, as_of)
    return lo <= as_of <= hi


def overlaps(a: MedicationOrder, b: MedicationOrder, as_of: date) -> bool:
    """True when both lines count and their periods share at least one day."""
    if a.status in NOT_TAKEN or b.status in NOT_TAKEN:
        return False
    a_lo, a_hi = effective_interval(a, as_of)
    b_lo, b_hi = effective_interval(b, as_of)
    return a_lo <= b_hi and b_lo <= a_hi


def duration_days(order: MedicationOrder, as_of: date) -> int | None:
    """Length of the line in days (inclusive), open ends counted up to ``as_of``; ``None`` when
    the start is unknown."""
    start, _ = treatment_period(order, as_of)
    if start is None:
        return None
    lo, hi = effective_interval(order, as_of)
    return (hi - lo).days + 1  # date.max - date.min fits in a timedelta


def renewal_ends(orders: Iterable[MedicationOrder], as_of: date, overlap_days: int,
                 medication: Callable[[MedicationOrder], Hashable]) -> dict[int, date]:
    """Lines taken over by their renewal: ``id(line)`` → the day before the renewal began.

    A renewal is a later line of the same ``medication`` (the caller's key: same substances and
    strengths) that begins after the line began, within the last ``overlap_days`` days of the line's
    *written* end, and runs past that end (or has no written end): the next box collected before the
    last one is finished. From its first day it replaces the line, so dose totals and duplicates do
    not count the two at once. A line without a written end never runs out, so it has no renewal; a
    short course begun in the last days of a line and ending with it is a second treatment. Only
    written periods are read: ``as_of`` changes nothing here. Lines of each medication are sorted
    once; each looks at the lines begun in its last days (n log n, at most :data:`RENEWAL_SCAN` each).
    """
    ends: dict[int, date] = {}
    if overlap_days <= 0:
        return ends
    window = _window(overlap_days)
    if window is None:
        return ends  # no line is that long
    by_medication: dict[Hashable, list[tuple[date, date | None, int]]] = {}
    for o in orders:
        if o.status in NOT_TAKEN:  # does not count
            continue
        memo = o.period_memo  # the line's period as computed once (_periods), read inline
        lo, hi = memo[1] if memo is not None and memo[0] == as_of else _periods(o, as_of)[0]
        if lo is None:
            continue  # no start: which line came first is unknown
        k = medication(o)
        found = by_medication.get(k)
        if found is None:
            by_medication[k] = [(lo, hi, id(o))]
        else:
            found.append((lo, hi, id(o)))
    for lines in by_medication.values():
        if len(lines) < 2:
            continue  # a line alone has no renewal
        lines.sort(key=lambda t: (t[0], t[1] or date.max))
        starts = [t[0] for t in lines]
        for lo, hi, line in lines:
            if hi is None:
                continue
            try:
                window_start = hi - window
            except OverflowError:
                continue
            first = bisect_left(starts, window_start)
            for next_lo, next_hi, other in lines[first:first + RENEWAL_SCAN]:
                if next_lo > hi:
                    break
                if next_lo <= lo or other == line:
                    continue
                if next_hi is None or next_hi > hi:
                    ends[line] = next_lo - ONE_DAY
                    break
    return ends


@functools.lru_cache(maxsize=64)
def _window(overlap_days: int) -> timedelta | None:
    """The last ``overlap_days`` days of a line, as the distance from its end (``None``: longer than
    any line can be)."""
    try:
        return timedelta(days=overlap_days - 1)
    except OverflowError:
        return None


RENEWAL_SCAN = 64
"""Lines begun in the last days of a line that are looked at for its renewal (a bound on the work)."""


def until_renewed(order: MedicationOrder, as_of: date, renewed: Mapping[int, date] | None) -> tuple[date, date]:
    """The line's comparison interval, ended the day before its renewal began when it has one (see
    :func:`renewal_ends`)."""
    lo, hi = effective_interval(order, as_of)
    if renewed and id(order) in renewed:
        hi = max(lo, min(hi, renewed[id(order)]))
    return lo, hi


def largest_concurrent(members: Sequence[tuple[MedicationOrder, str]], as_of: date,
                       weight: Callable[[MedicationOrder, str], float] | None = None,
                       renewed: Mapping[int, date] | None = None, since: date | None = None
                       ) -> list[tuple[MedicationOrder, str]]:
    """The largest set of lines (each with one of its substances) all taken on one common day, whenever
    that day was: of the lines' first days, the first (in line order) on which the most distinct
    substances (or, with ``weight``, the largest total weight) are taken, and every line taken that
    day. ``renewed``: lines ended by their renewal (:func:`renewal_ends`); ``since``: only days from
    then on count (a line begun before is counted from ``since``).

    A sweep over sorted starts and ends scores each first day (n log n)."""
    spans = []
    for o, k in members:
        lo, hi = until_renewed(o, as_of, renewed)
        if since is not None:
            if hi < since:
                continue
            lo = max(lo, since)
        spans.append(((lo, hi), o, k))
    if not spans:
        return []
    starts = sorted(range(len(spans)), key=lambda i: spans[i][0][0])
    ends = sorted(range(len(spans)), key=lambda i: spans[i][0][1])
    taken: dict[str, int] = {}  # substance -> lines taken on the day
    total = 0.0
    score: dict[date, float] = {}
    i = j = 0
    for day in sorted({lo for (lo, _), _, _ in spans}):
        while i < len(starts) and spans[starts[i]][0][0] <= day:
            _, o, k = spans[starts[i]]
            taken[k] = taken.get(k, 0) + 1
            total += weight(o, k) if weight else 0.0
            i += 1
        while j < len(ends) and spans[ends[j]][0][1] < day:
            _, o, k = spans[ends[j]]
            taken[k] -= 1
            if not taken[k]:
                del taken[k]
            total -= weight(o, k) if weight else 0.0
            j += 1
        score[day] = total if weight else float(len(taken))
    top = max(score.values())
    best = next(lo for (lo, _), _, _ in spans if score[lo] >= top - 1e-9)  # sums of floats: a tolerance
    return [(o, k) for (a, b), o, k in spans if a <= best <= b]
