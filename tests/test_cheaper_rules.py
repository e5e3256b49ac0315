"""EQ rules beyond the shared sample runner: pass samples are meaningful (their lines are
identified), justification parsing, CNOPS matching, English messages."""

from __future__ import annotations

import re

from pathlib import Path

import pytest

from checker import check, fhir_input
from checker.api import identify_records
from checker.economics.prices import brand_rows, cnops_matches, cnops_products
from checker.findings import Saving
from checker.model import Coding, Concept, MedicationIdentity, MedicationOrder, Quantity, SubstanceMatch
from checker.referentials import default_referentials
from checker.rules.cheaper import _name_strength, justification_codes
from tests.conftest import SAMPLES

PASS_SAMPLES = sorted(p for p in (SAMPLES / "rules").glob("EQ00*/pass-*.json"))


@pytest.mark.parametrize("path", PASS_SAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_pass_samples_are_identified(path: Path) -> None:
    """A pass sample proves something only if its lines were identified at rule-grade confidence."""
    ing = fhir_input.read([str(path)])
    identify_records(ing.records, default_referentials())
    orders = [o for r in ing.records for o in r.medication_orders]
    assert orders
    for o in orders:
        assert o.identity is not None and o.identity.confidence >= 0.85, (path.name, o.label, o.identity)


def _order(reason: Concept | None) -> MedicationOrder:
    return MedicationOrder(ref="MedicationRequest/x", status="active", intent="order", medication=Concept(text="x"),
                           substitution_allowed=False, substitution_reason=reason)


def test_justification_codes() -> None:
    assert justification_codes(_order(None)) == set()
    assert justification_codes(_order(Concept(text="non substituable (MTE)"))) == {"MTE"}
    assert justification_codes(_order(Concept((Coding("", "efg"),)))) == {"EFG"}
    assert justification_codes(_order(Concept(text="NS CIF"))) == {"CIF"}
    assert justification_codes(_order(Concept(text="non substituable"))) == set()
    assert justification_codes(_order(Concept(text="MTEX"))) == set()  # whole words only


def test_name_strength() -> None:
    assert _name_strength("LEVOTHYROX 100 microgrammes, comprimé sécable") == Quantity(100, "ug")
    assert _name_strength("LANTUS 100 Unités/ml, solution injectable en flacon") == Quantity(100, "U/ml")
    assert _name_strength("AMLOR PLUS 10MG/10MG") is None


def _identity(subs: list[tuple[str, float, str]], form: str) -> MedicationIdentity:
    return MedicationIdentity(substances=tuple(SubstanceMatch(k, k, Quantity(v, u)) for k, v, u in subs),
                              method="test", confidence=1.0, form=form)


def test_cnops_matching_by_dci_strength_and_form() -> None:
    refs = default_referentials()
    products = cnops_products(refs.get("cnops-2014"), refs.get("bdpm"))
    atorva = cnops_matches(products, _identity([("atorvastatine", 20, "mg")], "comprimé pelliculé"))
    assert atorva and all(m.row.dci == "ATORVASTATINE" and m.row.strength == "20" for m in atorva)
    assert {m.row.name for m in brand_rows(atorva, "tahor")} == {"TAHOR"}
    # the salt is folded (LEVOTHYROXINE SODIQUE) and µg are compared as mg
    levo = cnops_matches(products, _identity([("levothyroxine", 100, "ug")], "comprimé sécable"))
    assert levo and all(m.row.strength == "100" for m in levo)
    # a combination matches on every substance and strength, in any order
    combo = cnops_matches(products, _identity([("atorvastatine", 10, "mg"), ("amlodipine", 5, "mg")],
                                              "comprimé pelliculé"))
    assert {m.row.name for m in combo} == {"AMLOR PLUS 5MG/10MG"}
    # another route does not match (every immediate-release oral form is one form, art. L. 5121-1, 5° a
    # CSP: tablets and an oral solution match, and their units keep them apart when prices are compared)
    assert not cnops_matches(products, _identity([("atorvastatine", 20, "mg")], "solution injectable"))
    assert not cnops_matches(products, _identity([("atorvastatine", 20, "mg")], "comprimé à libération prolongée"))


def test_english_messages() -> None:
    path = SAMPLES / "rules" / "EQ003" / "fail-levothyrox-no-justification.json"
    report = check([str(path)], as_of="2026-01-15", select=["EQ003"], lang="en")
    (f,) = report.findings
    assert "without justification" in f.summary


def test_non_substitutable_is_respected_by_eq001() -> None:
    path = SAMPLES / "rules" / "EQ003" / "fail-levothyrox-no-justification.json"
    report = check([str(path)], as_of="2026-01-15", select=["EQ001", "EQ003"])
    assert [f.rule for f in report.findings] == ["EQ003"]


def test_before_2020_no_justification_needed() -> None:
    """The justification is required for prescriptions written from 1 January 2020."""
    import json

    path = SAMPLES / "rules" / "EQ003" / "fail-levothyrox-no-justification.json"
    bundle = json.loads(path.read_text(encoding="utf-8"))
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] == "MedicationRequest":
            e["resource"]["authoredOn"] = "2019-06-01"
    assert not check(bundle, as_of="2026-01-15", select=["EQ003"]).findings
    assert check([str(path)], as_of="2026-01-15", select=["EQ003"]).findings


@pytest.mark.corpus
@pytest.mark.parametrize("jurisdiction", ["fr", "ma"])
def test_real_world_inputs_never_crash(shared_dir: Path, jurisdiction: str) -> None:
    """Third-party FHIR (ANS ePrescription IG, pharmaceutical-analysis cases, Synthea): the EQ rules run
    cleanly, and every amount they claim is consistent with its unit prices."""
    inputs = [str(shared_dir / "fhir" / d) for d in ("eprescription-fr/json", "pharma-analysis-fr", "synthea/bundles")]
    report = check(inputs, as_of="2026-01-15", select=["EQ"], jurisdiction=jurisdiction)
    assert report.inputs.balanced()
    currency = "EUR" if jurisdiction == "fr" else "MAD"
    for f in report.findings:
        saving = (f.suggestion or {}).get("saving")
        if saving is not None:
            assert isinstance(saving, Saving)  # typed, not a dict the run summary digs into
            assert saving.currency == currency
            if saving.get("per_unit") is not None:
                assert saving.get("per_unit") > 0
            if saving.amount is not None:
                assert saving.amount > 0 and saving.per_year is not None and saving.per_year > 0


def test_pack_size_and_generic_savings_are_not_counted_twice() -> None:
    """A coded 28-tablet TAHOR pack for 180 days: EQ005 counts the move to the 90-tablet pack, EQ001 the
    move from that pack to the cheapest generic; together they add up to coded pack → generic."""
    path = SAMPLES / "rules" / "EQ005" / "fail-large-pack-six-months.json"
    report = check([str(path)], as_of="2026-01-15", select=["EQ001", "EQ005"])
    by_rule = {f.rule: f for f in report.findings}
    assert set(by_rule) == {"EQ001", "EQ005"}
    idx = default_referentials().get("bdpm")
    coded = idx.presentation("3400934306815")
    coded_unit = coded.price / coded.units
    generic_unit = by_rule["EQ001"].suggestion["with"]["unit_price"]
    total_per_day = sum(f.suggestion["saving"].get("per_day") for f in report.findings)
    assert total_per_day == pytest.approx(coded_unit - generic_unit, abs=2e-4)
    assert by_rule["EQ001"].suggestion["replace"]["prescribed_cip13"] == "3400934306815"


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_strategy_messages_name_their_source(lang: str) -> None:
    """EQ005 reads on its own: no wording that points at 'this sheet', the source named in full,
    English evidence and condition when the referential gives them."""
    from checker.referentials import default_referentials

    strategies = {s.id: s for s in default_referentials().get("cheaper-strategies")}
    paths = sorted((SAMPLES / "rules" / "EQ005").glob("fail-*.json"))
    seen = 0
    for path in paths:
        for f in check([str(path)], as_of="2026-01-15", select=["EQ005"], lang=lang).findings:
            strat = strategies[f.evidence["strategy"]]
            assert "fiche" not in f.detail.lower()
            assert strat.source.cite() in f.detail
            assert strat.text("evidence", lang) in f.detail and strat.text("applies_when", lang) in f.detail
            if lang == "en":
                assert strat.evidence_en and strat.evidence not in f.detail
                assert "Condition retenue" not in f.detail and "économie" not in f.detail
                assert not re.search(r"\d,\d{2} €", f.detail)
            seen += 1
    assert seen == len(paths)


def test_cnops_products_are_computed_once_per_referentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two Moroccan runs on the same loaded referentials build the CNOPS matching keys once."""
    from checker.economics import prices

    calls: list[int] = []
    real = prices.cnops_products

    def counting(cnops: object, idx: object) -> list[prices.CnopsProduct]:
        calls.append(1)
        return real(cnops, idx)

    monkeypatch.setattr(prices, "cnops_products", counting)
    monkeypatch.setattr(prices, "_CNOPS_PRODUCTS", {})
    path = SAMPLES / "rules" / "EQ001" / "fail-tahor-20-ma.json"
    first = check([str(path)], as_of="2026-01-15", jurisdiction="ma", select=["EQ001"]).findings
    second = check([str(path)], as_of="2026-01-15", jurisdiction="ma", select=["EQ001"]).findings
    assert first and [f.to_dict() for f in first] == [f.to_dict() for f in second]
    assert len(calls) == 1
