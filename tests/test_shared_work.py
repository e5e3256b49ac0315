"""Work shared between lines naming the same things: memos, shared extraction, relaxed GC.

Each shortcut must give exactly what the plain computation gives; these tests pin that down.
"""

from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import orjson
import pytest

from checker import memo
from checker.api import identify_records
from checker.fhir_input import read
from checker.model import Concept, Dispense, MedicationOrder, PatientRecord
from checker.periods import effective_interval, treatment_period
from checker.protocols.engine import evaluate_all, evaluate_record
from checker.referentials import default_referentials

AS_OF = date(2026, 1, 15)
SAMPLES = Path(__file__).resolve().parents[1] / "fhir_samples"


@dataclass(frozen=True)
class Box:
    value: int


def test_by_identity_computes_once_per_object_and_separately_for_equal_objects() -> None:
    calls: list[Box] = []

    @memo.by_identity
    def double(box: Box, factor: int) -> int:
        calls.append(box)
        return box.value * factor

    a, b = Box(2), Box(2)  # equal, distinct
    assert double(a, 3) == double(a, 3) == 6
    assert double(b, 3) == 6
    assert double(a, 4) == 8
    assert calls == [a, b, a]
    assert calls[0] is a and calls[1] is b


def test_by_identities_keys_every_argument_by_identity() -> None:
    calls = []

    @memo.by_identities
    def pair(x: dict, y: dict) -> int:  # dicts: unhashable arguments are fine
        calls.append((x, y))
        return len(x) + len(y)

    x, y = {"a": 1}, {"b": 2, "c": 3}
    assert pair(x, y) == pair(x, y) == 3
    assert pair(y, x) == 3
    assert len(calls) == 2


@pytest.mark.parametrize("arity", [1, 2, 3, 4])
def test_by_identities_is_the_same_whatever_the_number_of_arguments(arity: int) -> None:
    """Two and three arguments take a faster path than the general one: same keys, same pins."""
    calls = []

    def total(*objs: dict) -> int:
        calls.append(objs)
        return sum(len(o) for o in objs)

    exact = {1: lambda a: total(a), 2: lambda a, b: total(a, b), 3: lambda a, b, c: total(a, b, c),
             4: lambda a, b, c, d: total(a, b, c, d)}  # functions of exactly `arity` parameters
    f = memo.by_identities(exact[arity])
    objs = [{"k": i} for i in range(arity)]
    twins = [dict(o) for o in objs]  # equal, not identical
    assert f(*objs) == f(*objs) == arity
    assert f(*twins) == arity
    assert len(calls) == 2


def test_a_memo_entry_pins_its_object_so_its_id_cannot_be_reused() -> None:
    @memo.by_identity
    def value_of(box: Box) -> int:
        return box.value

    box = Box(1)
    alive = weakref.ref(box)
    assert value_of(box) == 1
    del box
    assert alive() is not None  # held by the entry: no other object can take its id
    for n in range(2, 500):
        assert value_of(Box(n)) == n


def test_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memo, "MAX_ENTRIES", 5)
    calls = []

    @memo.by_identities
    def ident(x: Box) -> int:
        calls.append(x)
        return x.value

    boxes = [Box(i) for i in range(20)]
    for b in boxes:
        ident(b)
    assert [ident(b) for b in boxes] == list(range(20))
    assert len(calls) > 20  # older entries were dropped and recomputed, with the right answers


def test_relaxed_gc_nests_and_restores_thresholds_even_on_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError):
        with memo.relaxed_gc():
            assert gc.get_threshold() == memo.RELAXED_GC_THRESHOLDS
            with memo.relaxed_gc():
                assert gc.get_threshold() == memo.RELAXED_GC_THRESHOLDS
            assert gc.get_threshold() == memo.RELAXED_GC_THRESHOLDS  # the outer job still runs
            raise RuntimeError("boom")
    assert gc.get_threshold() == before
    assert gc.isenabled()


def test_relaxed_gc_leaves_thresholds_the_host_changed_meanwhile() -> None:
    before = gc.get_threshold()
    try:
        with memo.relaxed_gc():
            gc.set_threshold(1234, 5, 6)
        assert gc.get_threshold() == (1234, 5, 6)
    finally:
        gc.set_threshold(*before)


def test_only_bulk_inputs_are_read_under_relaxed_gc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import contextlib

    from checker.fhir_input import assembly

    entered: list[int] = []

    @contextlib.contextmanager
    def recording():  # type: ignore[no-untyped-def]
        entered.append(1)
        yield

    monkeypatch.setattr(assembly, "relaxed_gc", recording)
    monkeypatch.setattr(assembly, "BULK_RESOURCES", 3)
    path = tmp_path / "MedicationRequest.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(_request(i, [])) for i in range(2)))
    read(str(path), as_of=AS_OF)
    assert entered == []  # a small input (a CDS request, one patient) keeps the host's settings
    path.write_bytes(b"\n".join(orjson.dumps(_request(i, [])) for i in range(3)))
    read(str(path), as_of=AS_OF)
    assert entered == [1]


def test_a_callers_dict_is_never_shared_by_json_text() -> None:
    # A tuple serialises like a list, but only a list is a FHIR array: the dict a library caller
    # passes is extracted element by element, as written.
    as_list = _request(1, [{"text": "1 cp"}])
    as_tuple = _request(2, ({"text": "1 cp"},))
    ing = read([as_list, as_tuple], as_of=AS_OF)
    assert ing.counts.checked == 1 and ing.counts.rejected == 1
    assert "dosageInstruction" in ing.errors[0].location


def _request(i: int, dosage: object, patient: str = "p1") -> dict:
    return {"resourceType": "MedicationRequest", "id": f"mr{i}", "status": "active", "intent": "order",
            "subject": {"reference": f"Patient/{patient}"}, "authoredOn": "2026-01-02",
            "medicationCodeableConcept": {"text": "Amoxicilline 1 g comprimé"},
            "dosageInstruction": dosage,
            "dispenseRequest": {"expectedSupplyDuration": {"value": 7, "unit": "d"}}}


def test_identical_elements_are_extracted_once_and_shared(tmp_path: Path) -> None:
    good = [{"text": "1 cp matin et soir", "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}}]
    path = tmp_path / "MedicationRequest.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(_request(i, good, f"p{i}")) for i in range(3)))
    orders = [o for r in read(str(path), as_of=AS_OF).records for o in r.medication_orders]
    assert len(orders) == 3
    assert orders[0].dosages is orders[1].dosages is orders[2].dosages
    assert orders[0].dispense is orders[2].dispense
    assert orders[0].medication is orders[2].medication
    assert orders[0].dosages[0].frequency == 2 and orders[0].dispense.supply_days == 7


def test_a_shared_bad_element_is_rejected_in_every_resource_with_its_own_location(tmp_path: Path) -> None:
    bad = [{"doseAndRate": [{"doseQuantity": {"value": "beaucoup"}}]}]
    path = tmp_path / "MedicationRequest.ndjson"
    path.write_bytes(b"\n".join([orjson.dumps(_request(1, bad)), orjson.dumps(_request(2, bad)),
                                 orjson.dumps(_request(3, []))]))
    ing = read(str(path), as_of=AS_OF)
    assert ing.counts.to_dict() == {"files": 1, "resources": 3, "checked": 1, "ignored": 0, "rejected": 2}
    assert [e.location for e in ing.errors] == [
        f"{path}:{n} /dosageInstruction/0/doseAndRate/0/doseQuantity/value" for n in (1, 2)]


def test_identification_is_the_same_for_shared_and_separately_built_medications() -> None:
    refs = default_referentials()
    shared = Concept(text="Simvastatine 20 mg comprimé")
    built = [MedicationOrder(ref=f"MedicationRequest/{i}", status="active", intent="order",
                             medication=shared if i < 2 else Concept(text="Simvastatine 20 mg comprimé"))
             for i in range(3)]
    record = PatientRecord(patient=None, medication_orders=built)
    identify_records([record], refs)
    assert built[0].identity is built[1].identity
    assert built[2].identity == built[0].identity
    assert built[0].identity is not None and built[0].identity.substance_keys == {"simvastatine"}


def test_treatment_period_memo_follows_as_of_and_is_not_copied_by_replace() -> None:
    o = MedicationOrder(ref="MedicationRequest/a", status="active", intent="order", medication=Concept(text="x"),
                        authored_on=date(2026, 1, 1))
    assert effective_interval(o, AS_OF) == (date(2026, 1, 1), AS_OF)
    later = date(2026, 3, 1)
    assert effective_interval(o, later) == (date(2026, 1, 1), later)
    changed = replace(o, dispense=Dispense(supply_days=10))
    assert treatment_period(changed, later) == (date(2026, 1, 1), date(2026, 1, 10))
    assert treatment_period(o, later) == (date(2026, 1, 1), None)


def test_thesaurus_matches_hands_out_fresh_lists() -> None:
    th = default_referentials().get("ansm-thesaurus")
    first = th.matches("simvastatine", "clarithromycine")
    assert first, "the 2023 thesaurus lists simvastatin + clarithromycin"
    first.clear()
    assert th.matches("simvastatine", "clarithromycine")


def test_evaluate_all_gives_what_each_protocol_gives_alone() -> None:
    refs = default_referentials()
    protocols = refs.get("protocols").protocols
    paths = sorted(str(p) for p in (SAMPLES / "rules").glob("OP*/*.json"))
    paths.append(str(SAMPLES / "demo"))
    records = read(paths, as_of=AS_OF).records
    identify_records(records, refs)
    evaluated = 0
    for record in records:
        one_by_one = [ev for p in protocols for ev in evaluate_record(p, record, AS_OF)]
        together = evaluate_all(protocols, record, AS_OF)
        assert [(e.protocol.id, e.order.ref, e.outcome.id, e.target) for e in together] == \
               [(e.protocol.id, e.order.ref, e.outcome.id, e.target) for e in one_by_one]
        evaluated += len(together)
    assert evaluated > 10
