"""Property tests: identification never crashes and stays deterministic on arbitrary text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from checker.drugs import identify, identify_text
from checker.drugs.matcher import parse_strengths, tokenize
from checker.model import Coding, Concept, MedicationOrder

WORDS = st.sampled_from(["Doliprane", "amoxicilline", "1000", "mg", "/", "+", "cp", "Simvastatin", "MG",
                         "Oral", "Tablet", "0,5", "µg", "zzz", "#ref", "acide", "é", "-", "(", ")"])


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_handled(text: str) -> None:
    first = identify_text(text)
    again = identify_text(text)
    assert first == again
    if first is not None:
        assert first.substances and 0 < first.confidence <= 1
    parse_strengths(tokenize(text))


@settings(max_examples=150, deadline=None)
@given(st.lists(WORDS, max_size=8).map(" ".join), st.text(alphabet="0123456789", max_size=14), st.text(max_size=30))
def test_any_order_gets_an_identity(text: str, code: str, system: str) -> None:
    o = MedicationOrder(ref="MedicationRequest/p", status="active", intent="order",
                        medication=Concept((Coding(system, code, text),) if code else (), text))
    ident = identify(o)
    assert 0.0 <= ident.confidence <= 1.0
    assert bool(ident.substances) == (ident.confidence > 0)
