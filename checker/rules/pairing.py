"""Pairs of concurrent lines at bounded cost (interactions, duplicates).

Comparing every line with every other one costs n² per patient, and one finding per pair of
*lines* makes the report itself n² when thousands of lines repeat the same few products (a
200,000-line patient history). Here lines are grouped by product (their identified medication);
for each pair of products the overlapping pairs of lines are counted by a sort and a binary search
(O(n log n)), enumerated by a sweep over time-sorted periods (O(n log n + pairs)) only when they
are few, and otherwise reported once for the pair of products (:class:`ProductPair`).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date

from checker.model import NOT_TAKEN, MedicationOrder
from checker.periods import effective_interval, until_renewed

LINE_PAIRS_PER_PRODUCT_PAIR = 20
"""Above this many overlapping pairs of lines for one pair of products, one finding is given for
the pair of products (naming every line concerned) instead of one per pair of lines."""


@dataclass(slots=True)
class Line:
    """One line taking part in pairing: its position in the record, the line and its interval."""

    index: int
    order: MedicationOrder
    lo: date
    hi: date


@dataclass(slots=True)
class Group:
    """The lines of one product, sorted by start, with their starts and ends sorted for counting."""

    key: Hashable
    lines: list[Line] = field(default_factory=list)
    los: list[date] = field(default_factory=list)
    his: list[date] = field(default_factory=list)

    @property
    def first(self) -> int:
        return self.lines[0].index

    def seal(self) -> None:
        if len(self.lines) == 1:  # most groups: one line
            only = self.lines[0]
            self.los, self.his = [only.lo], [only.hi]
            return
        if len(self.lines) == 2:  # the next most common: the sort below, by one comparison
            x, y = self.lines
            if (y.lo, y.index) < (x.lo, x.index):
                self.lines.reverse()
                x, y = y, x
            self.los = [x.lo, y.lo]
            self.his = [x.hi, y.hi] if x.hi <= y.hi else [y.hi, x.hi]
            return
        self.lines.sort(key=lambda ln: (ln.lo, ln.index))
        self.los = [ln.lo for ln in self.lines]
        self.his = sorted(ln.hi for ln in self.lines)


@dataclass(slots=True)
class ProductPair:
    """Two groups of lines (possibly the same group) with ``count`` overlapping pairs of lines."""

    a: Group
    b: Group
    count: int

    def pairs(self) -> list[tuple[Line, Line]]:
        """Every overlapping pair of lines, each as (earlier line, later line) in record order,
        sorted by record order (a sweep over the time-sorted lines: cost n log n + pairs)."""
        a, b = self.a, self.b
        if a is b and len(a.lines) == 2:  # a product on two lines (renewals, duplicates): no sweep
            x, y = a.lines
            if x.lo <= y.hi and y.lo <= x.hi:
                return [(x, y) if x.index < y.index else (y, x)]
            return []
        if a is not b and (len(a.lines) == 1 or len(b.lines) == 1):  # one line against a few: no sweep
            x, many = (a.lines[0], b.lines) if len(a.lines) == 1 else (b.lines[0], a.lines)
            found = [(x, y) if x.index < y.index else (y, x) for y in many if x.lo <= y.hi and y.lo <= x.hi]
            if len(found) > 1:
                found.sort(key=lambda p: (p[0].index, p[1].index))
            return found
        return sorted(_sweep(self.a, self.b), key=lambda p: (p[0].index, p[1].index))

    def pairs_unsorted(self) -> Iterator[tuple[Line, Line]]:
        """:meth:`pairs` in sweep order, lazily (to take the first one)."""
        return _sweep(self.a, self.b)

    def lines(self) -> list[Line]:
        """The lines of both groups that overlap at least one line of the other, in record order
        (a binary search per line: cost n log n however many pairs there are)."""
        own = 1 if self.a is self.b else 0  # within one group, a line overlaps itself

        def involved(x: Line, other: Group) -> bool:
            return bisect_right(other.los, x.hi) - bisect_left(other.his, x.lo) > own

        found = [x for x in self.a.lines if involved(x, self.b)]
        if self.a is not self.b:
            found += [y for y in self.b.lines if involved(y, self.a)]
        return sorted(found, key=lambda ln: ln.index)

    @property
    def collapsed(self) -> bool:
        """True when the pair of products is reported once rather than per pair of lines."""
        return self.count > LINE_PAIRS_PER_PRODUCT_PAIR


def group_lines(orders: Iterable[MedicationOrder], as_of: date,
                key: Callable[[MedicationOrder], Hashable], ends: Mapping[int, date] | None = None) -> list[Group]:
    """Lines that were taken (cancelled, entered-in-error … lines never overlap), grouped by ``key``,
    groups in the order of their first line. ``ends``: lines taken over by a renewal end the day
    before it (:func:`checker.periods.renewal_ends`)."""
    groups: dict[Hashable, Group] = {}  # in order of their first line (dicts keep their order)
    for i, order in enumerate(orders):
        if order.status in NOT_TAKEN:
            continue
        memo = order.period_memo  # the line's interval as computed once (checker.periods), read inline
        lo, hi = memo[2] if memo is not None and memo[0] == as_of else effective_interval(order, as_of)
        if ends and id(order) in ends:
            lo, hi = until_renewed(order, as_of, ends)
        k = key(order)
        g = groups.get(k)
        if g is None:
            g = groups[k] = Group(k)
        g.lines.append(Line(i, order, lo, hi))
    out = list(groups.values())
    for g in out:
        g.seal()
    return out


def group_of(key: Hashable, members: list[tuple[int, MedicationOrder]], as_of: date) -> Group:
    """One sealed group of lines taken (``(position in the record, line)``, in record order): what
    :func:`group_lines` makes of them when a rule has already split its lines by product."""
    return sealed(key, lines_of(members, as_of))


def lines_of(members: list[tuple[int, MedicationOrder]], as_of: date) -> list[Line]:
    """The :class:`Line` of each ``(position in the record, line)`` taken, in the given order (a rule
    that has split its lines by product pairs a product on one line without a group)."""
    out = []
    for i, order in members:
        memo = order.period_memo  # as in group_lines
        lo, hi = memo[2] if memo is not None and memo[0] == as_of else effective_interval(order, as_of)
        out.append(Line(i, order, lo, hi))
    return out


def sealed(key: Hashable, lines: list[Line]) -> Group:
    """A sealed group of ``lines`` (the list is not changed)."""
    g = Group(key, list(lines))
    g.seal()
    return g


def overlap_count(a: Group, b: Group) -> int:
    """Number of overlapping pairs of lines, one line in ``a`` and one in ``b`` (distinct lines when
    ``a is b``): for each line x, the lines starting on or before x's end minus those ending before
    x's start (these started before it too). Cost: (len(a) + len(b)) log."""
    if len(a.lines) == 1 and len(b.lines) == 1 and a is not b:  # the common case, without the searches
        x, y = a.lines[0], b.lines[0]
        return 1 if x.lo <= y.hi and y.lo <= x.hi else 0
    if a is b and len(a.lines) == 2:  # a product on two lines
        x, y = a.lines
        return 1 if x.lo <= y.hi and y.lo <= x.hi else 0
    total = 0
    for x in a.lines:
        total += bisect_right(b.los, x.hi) - bisect_left(b.his, x.lo)
    if a is b:
        total = (total - len(a.lines)) // 2  # each line overlaps itself; each pair counted twice
    return total


def product_pairs(groups: list[Group], wanted: Callable[[Group, Group], bool],
                  same_product: bool = True, focus: frozenset[str] | None = None,
                  labels: Callable[[Group], Iterable[Hashable]] | None = None,
                  pairs: Iterable[tuple[int, int]] | None = None) -> Iterator[ProductPair]:
    """Pairs of groups (``a`` first in record order; the group with itself when ``same_product``)
    that ``wanted`` keeps and whose lines overlap at least once. Under a ``focus``
    (:attr:`checker.registry.RunSettings.focus`) only the pairs where a group holds a focus line: a
    finding implicating a focus line comes from such a pair of products, and a pair of products gives
    the same findings whatever the other pairs. ``labels``: what a wanted pair must share (substance
    keys, classes …): only pairs of groups sharing a label are asked (same pairs, same order). ``pairs``:
    the positions ``(i, j)``, ``i <= j``, to ask, in order (the caller knows which can be wanted)."""
    hot = None if focus is None else {id(g) for g in groups if any(ln.order.ref in focus for ln in g.lines)}
    for i, j in _candidates(groups, same_product, labels) if pairs is None else pairs:
        a, b = groups[i], groups[j]
        if hot is not None and id(a) not in hot and id(b) not in hot:
            continue
        if (a is b and len(a.lines) < 2) or not wanted(a, b):
            continue
        n = overlap_count(a, b)
        if n:
            yield ProductPair(a, b, n)


def _candidates(groups: list[Group], same_product: bool,
                labels: Callable[[Group], Iterable[Hashable]] | None) -> Iterable[tuple[int, int]]:
    """Positions ``(i, j)``, ``i <= j`` (``i < j`` unless ``same_product``), in order: every pair, or
    the pairs sharing a label."""
    first = 0 if same_product else 1
    if labels is None:
        return ((i, j) for i in range(len(groups)) for j in range(i + first, len(groups)))
    holders: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        for label in set(labels(g)):
            holders.setdefault(label, []).append(i)
    return sorted({(at[x], at[y]) for at in holders.values() for x in range(len(at)) for y in range(x + first, len(at))})


def _sweep(a: Group, b: Group) -> Iterator[tuple[Line, Line]]:
    """Overlapping pairs of lines between ``a`` and ``b`` (within ``a`` when ``a is b``), each as
    (earlier, later) in record order: lines visited by start; a line overlaps every active line of
    the other side (started before it, not yet ended)."""
    if a is b:
        events = [(ln.lo, ln.index, 0, ln) for ln in a.lines]
    else:
        events = [(ln.lo, ln.index, 0, ln) for ln in a.lines] + [(ln.lo, ln.index, 1, ln) for ln in b.lines]
    events.sort(key=lambda e: (e[0], e[1]))
    active: list[dict[int, Line]] = [{}, {}]
    ends: list[list[tuple[date, int]]] = [[], []]
    for lo, _, side, line in events:
        other = side if a is b else 1 - side
        heap, live = ends[other], active[other]
        while heap and heap[0][0] < lo:
            live.pop(heapq.heappop(heap)[1], None)
        for y in live.values():
            yield (y, line) if y.index < line.index else (line, y)
        active[side][line.index] = line
        heapq.heappush(ends[side], (line.hi, line.index))


def line_signature(order: MedicationOrder) -> Hashable:
    """What a rule reads of a line apart from its dates (product, form, dose and its "as needed",
    route, reasons): lines with the same signature are judged alike on the same day."""
    undated = tuple(replace(d, bounds_start=None, bounds_end=None) for d in order.dosages)
    return (id(order.identity), order.medication, order.ingredients, order.medication_form, undated, order.reasons)


def by_signature(group: Group) -> list[Group]:
    """The lines of one product split by :func:`line_signature`, in record order of their first line."""
    out: dict[Hashable, Group] = {}
    for ln in group.lines:
        sig = line_signature(ln.order)
        g = out.get(sig)
        if g is None:
            g = out[sig] = Group(sig)
        g.lines.append(ln)
    for g in out.values():
        g.seal()
    return sorted(out.values(), key=lambda g: min(ln.index for ln in g.lines))


def signature_pairs(pp: ProductPair) -> Iterator[tuple[Group, Group]]:
    """The pairs of line signatures of a collapsed pair of products that overlap in time."""
    left = by_signature(pp.a)
    if pp.a is pp.b:
        for i, a in enumerate(left):
            for b in left[i:]:
                if (a is not b or len(a.lines) > 1) and overlap_count(a, b):
                    yield a, b
        return
    right = by_signature(pp.b)
    for a in left:
        for b in right:
            if overlap_count(a, b):
                yield a, b


def judged_pairs(a: Group, b: Group) -> list[tuple[Line, Line]]:
    """The pairs of lines on which two overlapping signatures are judged: their earliest overlapping
    pair and, when they overlap, their latest-starting lines (the record may have changed in between:
    age, renal function), in record order within each pair."""
    out: list[tuple[Line, Line]] = []
    first = next(iter(ProductPair(a, b, 1).pairs_unsorted()), None)
    if first is not None:
        out.append(first)
    x = max(a.lines, key=lambda ln: (ln.lo, ln.index))
    y = max((ln for ln in b.lines if ln is not x), key=lambda ln: (ln.lo, ln.index), default=None)
    if y is not None and x.lo <= y.hi and y.lo <= x.hi:
        last = (x, y) if x.index < y.index else (y, x)
        if first is None or {id(last[0]), id(last[1])} != {id(first[0]), id(first[1])}:
            out.append(last)
    return out
