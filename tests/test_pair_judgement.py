"""IX001 judges a pair of medications once when no entry between them reads the lines: the findings
are those of judging every pair of lines afresh (seeded pairs over the whole thesaurus)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

import pytest
from tests.test_iatro_support import line, record, run

from checker.referentials import default_referentials
from checker.rules import interactions


def _pairs(n: int, seed: int = 20261205) -> list[tuple[str, str]]:
    """``n`` random pairs of single substances the thesaurus links (any level, gated or not)."""
    th = default_referentials().get("ansm-thesaurus")
    rng = random.Random(seed)
    nodes = sorted(s for s in th.substance_nodes() if th.knows(s))
    out: list[tuple[str, str]] = []
    while len(out) < n:
        a, b = rng.sample(nodes, 2)
        if th.matches(a, b):
            out.append((a, b))
    return out


def _lines(a: str, b: str, copies: int) -> list:
    """``copies`` lines of each medication, one identified medication each (as bulk inputs share
    them), begun on different days and all overlapping; one line of each by the IV route."""
    first, second = line("a0", a), line("b0", b, route="iv")
    out = []
    for i in range(copies):
        day = date(2025, 12, 1) + timedelta(days=i)
        out.append(replace(first, ref=f"MedicationRequest/a{i}", authored_on=day))
        out.append(replace(second, ref=f"MedicationRequest/b{i}", authored_on=day))
    return out


def _afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pair of lines judged on its own (the path of entries that read the lines)."""
    monkeypatch.setattr(interactions, "_fixed_items", lambda th, a, b: None)
    monkeypatch.setattr(interactions, "_judgement_settled", interactions._judgement)


@pytest.mark.parametrize("pair", _pairs(80))
def test_findings_judged_once_per_pair_of_medications_equal_those_judged_per_pair_of_lines(
        pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for copies in (1, 3, 6):  # 1, 9 pairs of lines (one finding each), 36 (one collapsed finding)
        rec = record(*_lines(*pair, copies))
        shared = [(f.to_dict(), f.summary, f.detail) for f in run("IX001", rec)]
        with monkeypatch.context() as m:
            _afresh(m)
            fresh = [(f.to_dict(), f.summary, f.detail) for f in run("IX001", rec)]
        assert shared == fresh


def test_a_pair_of_medications_is_judged_once_for_its_pairs_of_lines() -> None:
    th = default_referentials().get("ansm-thesaurus")
    rec = record(*_lines("simvastatine", "clarithromycine", 3))
    a, b = rec.medication_orders[0].identity, rec.medication_orders[1].identity
    assert interactions._fixed_items(th, a, b) is not None  # one-level entries, no gate
    found = run("IX001", rec)
    assert len(found) == 9
    # worked out once per order of the two medications in the record (a0 b0 a1 b1 …: both orders occur)
    assert len({id(f.evidence["entries"]) for f in found}) == 2


DU001_FOUND: list[int] = []


@pytest.mark.parametrize("seed", range(30))
def test_du001_leaves_out_lines_sharing_no_substance_without_changing_a_finding(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """DU001 pairs and renews only the lines with a substance another line also has: the findings are
    those of pairing every line (seeded records: repeated and renewed medications, combinations,
    statuses, dates)."""
    from checker.rules import duplicates
    from tests.test_iatro_support import dose

    rng = random.Random(seed)
    pool = [("paracetamol",), ("paracetamol", "tramadol"), ("ibuprofene",), ("tramadol",), ("amoxicilline",),
            ("omeprazole",), ("simvastatine",), ("metformine",)]
    made = {keys: line("x", *keys, dosages=(dose(500, "mg", 3),)) for keys in pool}
    orders = []
    for i in range(rng.randrange(2, 25)):
        base = made[rng.choice(pool)]
        day = date(2025, 10, 1) + timedelta(days=rng.randrange(0, 100))
        orders.append(replace(base, ref=f"MedicationRequest/m{i}", authored_on=day,
                              status=rng.choice(["active", "active", "completed", "stopped", "cancelled"]),
                              dispense=rng.choice([None, line("y", "z", supply_days=rng.choice([7, 30])).dispense])))
    rec = record(*orders)
    kept = [(f.to_dict(), f.detail) for f in run("DU001", rec)]
    monkeypatch.setattr(duplicates, "_sharing_a_substance", list)
    every = [(f.to_dict(), f.detail) for f in run("DU001", rec)]
    assert kept == every
    DU001_FOUND.append(len(kept))


def test_du001_seeded_records_hold_duplicates() -> None:
    assert len(DU001_FOUND) < 30 or sum(DU001_FOUND) >= 30, DU001_FOUND  # the comparison above is not vacuous


# --- shortcuts of IX001, DU001 and DU002 against their plain paths (seeded records) -----------------

ROUTES = ("", "", "", "iv", "cutanee", "ophtalmique", "orale", "cutanee;orale")
STATUSES = ("active", "active", "active", "completed", "stopped", "cancelled", "on-hold")


def _random_orders(rng: random.Random, pool: list, n: int, atc_of=None) -> list:
    """``n`` lines drawn from ``pool`` (tuples of substance keys): a medication (one identified object)
    is often on several lines, as in bulk inputs; random statuses, routes, days and durations."""
    made: dict = {}
    out = []
    for i in range(n):
        keys = rng.choice(pool)
        route = rng.choice(ROUTES)
        base = made.get((keys, route))
        if base is None or rng.random() < 0.2:  # sometimes the same product as another medication object
            atc = tuple(c for k in keys for c in (atc_of(k) if atc_of else ()))
            base = made[(keys, route)] = line("x", *keys, route=route, atc=atc)
        day = date(2025, 9, 1) + timedelta(days=rng.randrange(0, 120))
        out.append(replace(base, ref=f"MedicationRequest/m{i}", authored_on=day, status=rng.choice(STATUSES),
                           dispense=rng.choice([None, line("y", "z", supply_days=rng.choice([5, 14, 30, 90])).dispense]),
                           kind=rng.choice(["request", "request", "request", "dispense"])))
    return out


def _ix_pool(seed: int) -> list:
    """Medications over the whole thesaurus: its substances, pairs of them, keys it does not know,
    and substances it places by ATC code only (NSAID codes)."""
    th = default_referentials().get("ansm-thesaurus")
    rng = random.Random(seed)
    nodes = sorted(s for s in th.substance_nodes() if th.knows(s))
    linked = _pairs(6, seed)
    pool: list = [(k,) for pair in linked for k in pair]
    pool += [(k,) for k in rng.sample(nodes, 6)]
    pool += [tuple(sorted(rng.sample(nodes, 2))), (linked[0][0], linked[1][1]), ("substance inconnue",),
             ("ketorolac oral", ), ("paracetamol",)]
    return pool


def _atc_only(key: str) -> tuple[str, ...]:
    return ("M01AB15",) if key == "ketorolac oral" else ()


def _plain_ix(m: pytest.MonkeyPatch) -> None:
    """IX001 without its shortcuts: every line given by a systemic route grouped, every pair of
    medications asked whether the thesaurus links them."""
    th = default_referentials().get("ansm-thesaurus")

    def on_a_side(th, ident):  # noqa: ANN001, ANN202  # a line on no side is kept
        return frozenset({"any"}), frozenset()

    def every_pair(th, idents, reaches, twice, hot=None):  # noqa: ANN001, ANN202  # a focus left to product_pairs
        n = len(idents)
        return [(i, j) for i in range(n) for j in range(i, n)]

    def systemic_lines(th, linked, members):  # noqa: ANN001, ANN202  # every medication's local lines out
        for p, lines in enumerate(members):
            members[p] = [(i, o) for i, o in lines if not th.local_only(
                interactions._local_route_of(th, o.medication, o.dosages, o.identity), o.identity.substance_keys,
                o.identity.atc_codes)]
        return [(i, j) for i, j in linked if members[i] and members[j] and (i != j or len(members[i]) > 1)]

    m.setattr(interactions, "_reach", on_a_side)
    m.setattr(interactions, "_linked", every_pair)
    m.setattr(interactions, "_systemic_links", systemic_lines)
    m.setattr(interactions, "_one_line_side", lambda a, b: False)
    m.setattr(interactions, "_judgement_settled", interactions._judgement)
    m.setattr(interactions, "_always", lambda a, b: interactions._pairs_with(
        th, a.lines[0].order.identity, b.lines[0].order.identity))


def _plain_pairing(m: pytest.MonkeyPatch) -> None:
    """Pairing without the one-line shortcuts: counts by binary search, pairs by the sweep."""
    from checker.rules import pairing

    def count(a, b):  # noqa: ANN001, ANN202
        total = sum(pairing.bisect_right(b.los, x.hi) - pairing.bisect_left(b.his, x.lo) for x in a.lines)
        return (total - len(a.lines)) // 2 if a is b else total

    m.setattr(pairing, "overlap_count", count)
    m.setattr(pairing.ProductPair, "pairs",
              lambda self: sorted(pairing._sweep(self.a, self.b), key=lambda p: (p[0].index, p[1].index)))


SHORTCUT_FINDINGS: dict[str, list[int]] = {"IX001": [], "IX001-focus": [], "DU001": [], "DU002": []}


@pytest.mark.parametrize("seed", range(40))
def test_ix001_shortcuts_find_what_the_plain_path_finds(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines on no side of an entry left out, pairs of medications asked only when their thesaurus
    sides meet, one-line groups paired directly: the same findings and words as the plain path, on
    seeded records drawing medications over the whole thesaurus."""
    rng = random.Random(seed)
    rec = record(*_random_orders(rng, _ix_pool(seed), rng.randrange(2, 40), _atc_only))
    fast = [(f.to_dict(), f.summary, f.detail) for f in run("IX001", rec)]
    with monkeypatch.context() as m:
        _plain_ix(m)
        _plain_pairing(m)
        plain = [(f.to_dict(), f.summary, f.detail) for f in run("IX001", rec)]
    assert fast == plain
    SHORTCUT_FINDINGS["IX001"].append(len(fast))


@pytest.mark.parametrize("seed", range(30))
def test_ix001_under_a_focus_asks_only_pairs_with_a_focus_medication_and_finds_what_the_plain_path_finds(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a focus (the CDS service's drafts) only the pairs of medications where one has a focus
    line are asked: the findings and words of the plain path run under the same focus (which asks
    every pair and leaves the others to the pairing's focus test), on seeded records."""
    from checker.registry import RunSettings, get_rule

    rng = random.Random(1000 + seed)
    rec = record(*_random_orders(rng, _ix_pool(seed), rng.randrange(2, 40), _atc_only))
    refs = [o.ref for o in rec.medication_orders]
    settings = RunSettings(as_of=date(2026, 1, 15), focus=frozenset(rng.sample(refs, rng.choice([1, 1, 2, 3]))))

    def findings() -> list:
        found = get_rule("IX001").run(rec, settings, default_referentials())
        return [(f.to_dict(), f.summary, f.detail) for f in found]

    fast = findings()
    with monkeypatch.context() as m:
        _plain_ix(m)
        _plain_pairing(m)
        plain = findings()
    assert fast == plain
    SHORTCUT_FINDINGS["IX001-focus"].append(len(fast))


def _class_pool(seed: int) -> tuple[list, dict]:
    """Medications over every ATC chemical subgroup DU002 knows and every STOPP class row (made-up
    level-5 codes under them; the rule reads prefixes), with substances shared between some."""
    refs = default_referentials()
    classes = refs.get("therapeutic-classes")
    rows = refs.get("iatrogenic-rules").kind("duplicate-class")
    rng = random.Random(seed)
    atc: dict[str, tuple[str, ...]] = {}
    groups = sorted(classes.names)
    for g in rng.sample(groups, 5):
        for n in (1, 2):
            atc[f"subst {g.lower()} {n}"] = (f"{g}0{n}",)
    for row in rows:
        prefix = rng.choice(row.atc)
        atc[f"subst {row.id} 1"] = ((prefix + "XX01")[:7],)
        atc[f"subst {row.id} 2"] = ((prefix + "YY02")[:7],)
    keys = sorted(atc)
    pool = [(k,) for k in keys] + [tuple(sorted(rng.sample(keys, 2))) for _ in range(4)] + [("paracetamol",)]
    return pool, atc


@pytest.mark.parametrize("seed", range(40))
def test_du002_shortcuts_find_what_the_plain_path_finds(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the lines of medications sharing a class with another grouped, pairs of medications judged
    once: the same findings and words as grouping every classed line and asking every pair of groups
    (the group of a medication with itself included)."""
    from checker.rules import duplicates

    rng = random.Random(seed)
    pool, atc = _class_pool(seed)
    rec = record(*_random_orders(rng, pool, rng.randrange(2, 40), lambda k: atc.get(k, ())))
    fast = [(f.to_dict(), f.summary, f.detail) for f in run("DU002", rec)]
    with monkeypatch.context() as m:
        def every_classed(data, classes, orders):  # noqa: ANN001, ANN202
            lines = [o for o in orders if duplicates._classed(data, classes, o.identity)[2]]
            n = len({id(o.identity) for o in lines})
            return lines, [(i, j) for i in range(n) for j in range(i, n)]

        m.setattr(duplicates, "_sharing_a_class", every_classed)
        _plain_pairing(m)
        plain = [(f.to_dict(), f.summary, f.detail) for f in run("DU002", rec)]
    assert fast == plain
    SHORTCUT_FINDINGS["DU002"].append(len(fast))


@pytest.mark.parametrize("seed", range(30))
def test_du001_shortcuts_find_what_the_plain_path_finds(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Renewals looked for among repeated medications only, pairs of groups from shared substances,
    one-line groups paired directly: the findings of the plain path (seeded records)."""
    from checker.rules import duplicates
    from tests.test_iatro_support import dose

    rng = random.Random(seed)
    pool = [("paracetamol",), ("paracetamol", "tramadol"), ("ibuprofene",), ("tramadol",), ("amoxicilline",),
            ("omeprazole",), ("codeine", "paracetamol")]
    orders = [replace(o, dosages=(dose(rng.choice([500, 1000]), "mg", 3),)) for o in _random_orders(rng, pool, rng.randrange(2, 40))]
    rec = record(*orders)
    fast = [(f.to_dict(), f.summary, f.detail) for f in run("DU001", rec)]
    with monkeypatch.context() as m:
        def keys(g):  # noqa: ANN001, ANN202
            return g.lines[0].order.identity.substance_keys

        m.setattr(duplicates, "_repeated_medications", lambda orders: (list(orders), {
            id(o.identity): duplicates.medication_key(o) for o in orders}))
        m.setattr(duplicates, "_always", lambda a, b: bool(keys(a) & keys(b)))
        m.setattr(duplicates, "_substance_pairs", lambda groups: [(i, j) for i in range(len(groups))
                                                                   for j in range(i, len(groups))])
        _plain_pairing(m)
        plain = [(f.to_dict(), f.summary, f.detail) for f in run("DU001", rec)]
    assert fast == plain
    SHORTCUT_FINDINGS["DU001"].append(len(fast))


def test_the_shortcut_comparisons_are_not_vacuous() -> None:
    """The seeded records above hold findings of each rule (when the comparisons ran)."""
    for rule_id, counts in SHORTCUT_FINDINGS.items():
        assert len(counts) < 30 or sum(counts) >= 30, (rule_id, counts)


def test_the_reach_of_a_one_substance_medication_by_its_substance_is_its_reach_over_the_whole_thesaurus() -> None:
    """IX001 keeps a one-substance medication's thesaurus nodes and partners by the substance's key and
    ATC codes (a CDS request brings new medication objects): the same sets as worked out from the
    medication, for every substance the thesaurus names and for substances placed by ATC code only."""
    from checker.iatrogenic.thesaurus import ATC_CLASS_EXTENSIONS
    from checker.model import MedicationIdentity, SubstanceMatch

    th = default_referentials().get("ansm-thesaurus")
    index = interactions._partner_index(th)

    def plain(ident):  # noqa: ANN001, ANN202
        nodes = frozenset(n for s in ident.substances for n in th.closure_with_atc(s.key, s.atc) if n in index)
        return nodes, frozenset().union(*(index[n] for n in nodes))

    codes = [(p + "01",) for prefixes in ATC_CLASS_EXTENSIONS.values() for p in prefixes]
    subs = [(k, ()) for k in th.substance_nodes()] + [(f"inconnue {i}", c) for i, c in enumerate(codes)]
    reached = 0
    for key, atc in subs:
        ident = MedicationIdentity((SubstanceMatch(key, key, None, atc),), "text-exact", 1.0)
        assert interactions._reach(th, ident) == plain(ident), key
        reached += bool(plain(ident)[0])
    assert reached > len(subs) / 2


def test_a_group_of_two_lines_is_sealed_as_the_sort_seals_it() -> None:
    """Sealing a group of two lines by one comparison gives the lines, starts and ends the sort gives
    (seeded intervals with equal starts and ends, lines in either order)."""
    from checker.rules.pairing import Group, Line

    rng = random.Random(17)
    day = date(2025, 1, 1)
    for _ in range(2000):
        lines = []
        for _ in range(2):
            lo = day + timedelta(days=rng.randrange(0, 4))
            lines.append(Line(rng.randrange(0, 5), None, lo, lo + timedelta(days=rng.randrange(0, 4))))  # type: ignore[arg-type]
        if lines[0].index == lines[1].index:
            continue
        g = Group("k", list(lines))
        g.seal()
        by_sort = sorted(lines, key=lambda ln: (ln.lo, ln.index))
        assert g.lines == by_sort
        assert g.los == [ln.lo for ln in by_sort] and g.his == sorted(ln.hi for ln in lines)


@pytest.mark.parametrize("seed", range(8))
def test_ix001_judgements_remembered_by_settled_items_emptied_when_full_change_nothing(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Judgements of pairs settled on their lines are remembered by their matches and settled values
    (a bounded memo): emptied every two entries, or not at all, the findings are those of judging each
    pair afresh (seeded records over the whole thesaurus, with the entries that read the lines)."""
    rng = random.Random(500 + seed)
    rec = record(*_random_orders(rng, _ix_pool(seed), rng.randrange(10, 40), _atc_only))
    interactions._SETTLED_JUDGEMENTS.clear()
    kept = [(f.to_dict(), f.summary, f.detail) for f in run("IX001", rec)]
    with monkeypatch.context() as m:
        m.setattr(interactions, "MAX_ENTRIES", 2)
        interactions._SETTLED_JUDGEMENTS.clear()
        small = [(f.to_dict(), f.summary, f.detail) for f in run("IX001", rec)]
        assert len(interactions._SETTLED_JUDGEMENTS) <= 2
    with monkeypatch.context() as m:
        _afresh(m)
        fresh = [(f.to_dict(), f.summary, f.detail) for f in run("IX001", rec)]
    assert kept == small == fresh
