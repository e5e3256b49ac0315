"""Acceptance scenarios of issue 4 (fhir_samples/scenarios/cheaper/).

Each scenario's findings must match its ``.expect`` one-to-one; every amount is then
recomputed here from the shipped referentials (BDPM presentations, CNOPS rows) with this file's
own simple selection, never typed in.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from checker import check
from checker.referentials import default_referentials
from tests.conftest import SAMPLES
from tests.conftest import match_one_to_one

SCENARIOS = SAMPLES / "scenarios" / "cheaper"
NAMES = sorted(p.stem for p in SCENARIOS.glob("*.json"))


def _run(name: str) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
    exp = orjson.loads((SCENARIOS / f"{name}.expect").read_bytes())
    report = check([str(SCENARIOS / f"{name}.json")], as_of=exp["as_of"], jurisdiction=exp["jurisdiction"],
                   select=exp["select"])
    assert not report.errors
    return exp, [f.to_dict() for f in report.findings], report


def test_all_acceptance_scenarios_present() -> None:
    wanted = {"tahor-20", "crestor-10", "plavix-75", "inexium-20", "lantus-initiation", "atorvastatine-dci",
              "levothyroxine-ns-mte", "levothyroxine-ns-missing", "tahor-20-ma"}
    assert wanted <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_scenario_findings_match(name: str) -> None:
    exp, found, _ = _run(name)
    problems = match_one_to_one(exp["findings"], found)
    assert not problems, f"{name}:\n" + "\n".join(problems)


# --- independent recomputation ---------------------------------------------------------------------

_EXCLUDED_FORMS = ("croquer", "orodispersible", "effervescent", "dispersible", "buvable")


def _comparable_form(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    if ("gastro" in a) != ("gastro" in b):
        return False
    return not any(w in b and w not in a for w in _EXCLUDED_FORMS)


def _unit_prices(idx: Any, cis: str, *, alternative: bool) -> list[float]:
    """Unit prices (price ÷ units from the index) of the priced presentations of a specialty;
    alternatives must also be marketed, reimbursed and free of shortage."""
    spec = idx.specialty(cis)
    out = []
    for p in idx.presentations(cis):
        if p.price is None or not p.units:
            continue
        if alternative:
            short = p.shortage or spec.shortage
            if not (p.marketed and spec.marketed and p.reimbursement_rate) or (short and short.status_code != 4):
                continue
        out.append(p.price / p.units)
    return out


def _generic_expectation(idx: Any, cis: str) -> tuple[float, float]:
    """(prescribed unit price, cheapest substitutable unit price) computed from the index."""
    spec = idx.specialty(cis)
    group = idx.generic_group(spec.generic_group)
    prescribed = min(_unit_prices(idx, cis, alternative=False))
    alts = []
    for member, gtype, _ in group.members:
        other = idx.specialty(member)
        if member == cis or gtype == 2 or other is None or not _comparable_form(spec.form, other.form):
            continue
        alts.extend(_unit_prices(idx, member, alternative=True))
    return prescribed, min(alts)


@pytest.mark.parametrize(
    "name, cis, days",
    [("tahor-20", "69902323", 90), ("crestor-10", "68479386", None), ("plavix-75", "63564053", 30),
     ("inexium-20", "64578892", 28)],
)
def test_generic_saving_recomputed_from_bdpm(name: str, cis: str, days: int | None) -> None:
    idx = default_referentials().get("bdpm")
    _, found, _ = _run(name)
    (f,) = [x for x in found if x["rule"] == "EQ001"]
    prescribed, alternative = _generic_expectation(idx, cis)
    assert alternative < prescribed
    s = f["suggestion"]
    assert s["replace"]["cis"] == cis
    assert s["replace"]["unit_price"] == pytest.approx(prescribed, abs=1e-4)
    assert s["with"]["unit_price"] == pytest.approx(alternative, abs=1e-4)
    assert idx.specialty(s["with"]["cis"]).generic_group == idx.specialty(cis).generic_group
    per_day = prescribed - alternative  # one tablet a day in every scenario
    period_days = days if days is not None else 365
    assert s["saving"]["amount"] == pytest.approx(round(per_day * period_days, 2), abs=0.011)
    # every scenario is a long-term line (≥ 28 days or open-ended): its yearly figure is annualised
    assert s["saving"]["per_year_basis"] == "annualised"
    assert s["saving"]["per_year"] == pytest.approx(round(per_day * 365, 2), abs=0.011)


def _fr_money(value: float) -> str:
    """French CLDR money: narrow no-break space between thousands, no-break space before the sign."""
    return f"{value:,.2f}".replace(",", "\u202f").replace(".", ",") + "\u00a0€"


def test_tahor_90_days_message_states_annualised_year() -> None:
    """A 90-day TAHOR line: the message gives the 90-day saving and the saving per year of a
    continuous treatment (daily saving × 365), not 90 days' worth; amounts recomputed from BDPM."""
    idx = default_referentials().get("bdpm")
    _, found, report = _run("tahor-20")
    (f,) = [x for x in found if x["rule"] == "EQ001"]
    prescribed, alternative = _generic_expectation(idx, "69902323")
    per_year = round((prescribed - alternative) * 365, 2)
    assert _fr_money(round((prescribed - alternative) * 90, 2)) in f["detail"]
    assert f"soit {_fr_money(per_year)} par an pour ce traitement au long cours" in f["detail"]
    assert report.savings()["by_rule"]["EQ001"]["EUR"] == pytest.approx(per_year, abs=0.011)


def test_short_course_is_not_annualised() -> None:
    """A 10-day course without repeats: the per-year figure is the treatment amount, said in words;
    the same line with repeats is a long-term treatment and is annualised."""
    from fhir_samples_builder import bundle, order  # type: ignore[import-not-found]

    idx = default_referentials().get("bdpm")
    prescribed, alternative = _generic_expectation(idx, "64578892")  # INEXIUM 20 mg
    short = check(bundle(order("mr-1", "INEXIUM 20 mg, comprimé gastro-résistant", days=10)), as_of="2026-01-15",
                  select=["EQ001"])
    (f,) = [x.to_dict() for x in short.findings]
    saving = f["suggestion"]["saving"]
    assert saving["per_year_basis"] == "treatment"
    assert saving["per_year"] == saving["amount"] == pytest.approx(round((prescribed - alternative) * 10, 2),
                                                                    abs=0.011)
    assert "traitement court" in f["detail"] and "sans extrapolation" in f["detail"]
    renewed = order("mr-1", "INEXIUM 20 mg, comprimé gastro-résistant", days=None)
    renewed["dispenseRequest"] = {"numberOfRepeatsAllowed": 2,
                                  "expectedSupplyDuration": {"value": 10, "unit": "j", "code": "d",
                                                             "system": "http://unitsofmeasure.org"}}
    (g,) = [x.to_dict() for x in check(bundle(renewed), as_of="2026-01-15", select=["EQ001"]).findings]
    assert g["suggestion"]["saving"]["per_year_basis"] == "annualised"
    assert g["suggestion"]["saving"]["per_year"] == pytest.approx(round((prescribed - alternative) * 365, 2),
                                                                   abs=0.011)


def test_english_amounts_use_a_decimal_point() -> None:
    idx = default_referentials().get("bdpm")
    exp = orjson.loads((SCENARIOS / "tahor-20.expect").read_bytes())
    report = check([str(SCENARIOS / "tahor-20.json")], as_of=exp["as_of"], select=["EQ001"], lang="en")
    (f,) = [x.to_dict() for x in report.findings]
    prescribed, alternative = _generic_expectation(idx, "69902323")
    assert f"€{alternative:.4f}" in f["summary"]  # English CLDR: the sign first, a decimal point
    assert f"€{round((prescribed - alternative) * 90, 2):,.2f}" in f["detail"]
    assert f"€{round((prescribed - alternative) * 365, 2):,.2f} per year" in f["detail"]
    assert not re.search(r"\d,\d{2}\s€", f["detail"]) and "économie" not in f["detail"]


def test_eq001_leaves_the_dci_reminder_to_eq002() -> None:
    """A brand line with a cheaper generic: EQ002 alone says to prescribe in DCI."""
    _, found, _ = _run("tahor-20")
    eq001 = [f for f in found if f["rule"] == "EQ001"]
    assert eq001 and all("DCI" not in f["detail"] and "dénomination" not in f["detail"] for f in eq001)
    exp = orjson.loads((SCENARIOS / "tahor-20.expect").read_bytes())
    both = check([str(SCENARIOS / "tahor-20.json")], as_of=exp["as_of"], select=["EQ001", "EQ002"])
    dci = [f for f in both.findings if "DCI" in f.detail or "dénomination" in f.summary]
    assert [f.rule for f in dci] == ["EQ002"]


def test_biosimilar_saving_recomputed_from_bdpm() -> None:
    idx = default_referentials().get("bdpm")
    _, found, _ = _run("lantus-initiation")
    (f,) = found

    def per_ml(cis: str, alternative: bool) -> list[float]:
        spec = idx.specialty(cis)
        out = []
        for p in idx.presentations(cis):
            m = re.search(r"(?:(\d+) \w+\(s\).*?)?de (\d+)\s*ml", p.label)
            if p.price is None or not m:
                continue
            if alternative and (not p.marketed or not p.reimbursement_rate or (p.shortage or spec.shortage)
                                and (p.shortage or spec.shortage).status_code != 4):
                continue
            out.append(p.price / (int(m.group(1) or 1) * int(m.group(2))))
        return out

    prescribed = min(per_ml("65979151", False))
    alts = []
    for cis in idx.specialties_with({"insuline glargine"}):
        spec = idx.specialty(cis)
        comp = spec.components[0]
        if spec.brand.startswith("lantus") or comp.value != 100 or "solution injectable" not in spec.form:
            continue
        alts.extend(per_ml(cis, True))
    alternative = min(alts)
    s = f["suggestion"]
    assert s["replace"]["unit_price"] == pytest.approx(prescribed, abs=1e-4)
    assert s["with"]["unit_price"] == pytest.approx(alternative, abs=1e-4)
    ml_per_day = 20 / 100  # 20 U a day of a 100 U/ml insulin
    assert s["saving"]["amount"] == pytest.approx(round((prescribed - alternative) * ml_per_day * 365, 2), abs=0.011)


def test_morocco_saving_recomputed_from_cnops() -> None:
    cnops = default_referentials().get("cnops-2014")
    _, found, _ = _run("tahor-20-ma")
    (f,) = found

    def unit(row: Any) -> float:
        return row.ppv / int(re.match(r"1 BOITE (\d+)", row.presentation).group(1))

    rows = [r for r in cnops.rows if r.dci == "ATORVASTATINE" and r.strength == "20" and r.strength_unit == "MG"
            and r.form.startswith("COMPRIME")]
    prescribed = min(unit(r) for r in rows if r.name.startswith("TAHOR"))
    alternative = min(unit(r) for r in rows if r.generic and r.reimbursement_rate > 0)
    s = f["suggestion"]
    assert s["saving"]["currency"] == "MAD" and s["replace"]["currency"] == "MAD"
    assert s["replace"]["unit_price"] == pytest.approx(prescribed, abs=1e-4)
    assert s["with"]["unit_price"] == pytest.approx(alternative, abs=1e-4)
    assert s["saving"]["amount"] == pytest.approx(round((prescribed - alternative) * 90, 2), abs=0.011)
    # CNOPS pays its rate of the reimbursement base (PRIX_BR), per unit of the cheapest TAHOR pack.
    tahor = min((r for r in rows if r.name.startswith("TAHOR")), key=unit)
    assert f["evidence"]["reimbursed_per_unit"] == pytest.approx(
        tahor.prix_br * tahor.reimbursement_rate / int(re.match(r"1 BOITE (\d+)", tahor.presentation).group(1)), abs=1e-4)
    assert "CNOPS" in f["source"]["label"]


def test_product_absent_from_cnops_is_said_not_guessed() -> None:
    from fhir_samples_builder import bundle, order  # type: ignore[import-not-found]

    cnops = default_referentials().get("cnops-2014")
    assert not any(r.name.startswith("ADENURIC") for r in cnops.rows)
    report = check(bundle(order("mr-febux", "ADENURIC 80 mg, comprimé pelliculé")), as_of="2026-01-15",
                   jurisdiction="ma", select=["EQ001"])
    (f,) = [x.to_dict() for x in report.findings]
    assert f["evidence"]["absent_from"] == "cnops-2014"
    assert f["suggestion"] is None  # no price, no saving: nothing is guessed
    fr = check(bundle(order("mr-febux", "ADENURIC 80 mg, comprimé pelliculé")), as_of="2026-01-15", select=["EQ001"])
    assert all(x.evidence.get("absent_from") is None for x in fr.findings)


def test_savings_summary_by_rule_and_substance() -> None:
    exp = orjson.loads((SCENARIOS / "tahor-20.expect").read_bytes())
    paths = [str(SCENARIOS / f"{n}.json") for n in ("tahor-20", "crestor-10", "lantus-initiation")]
    report = check(paths, as_of=exp["as_of"], select=["EQ"])
    per_year = {}
    for f in report.findings:
        saving = f.saving
        if saving is not None:
            per_year[f.evidence["substance"]] = per_year.get(f.evidence["substance"], 0) + saving.yearly
    summary = report.savings()
    assert set(summary["by_substance"]) == {"atorvastatine", "rosuvastatine", "insuline glargine"}
    for key, value in per_year.items():
        assert summary["by_substance"][key]["EUR"] == pytest.approx(value, abs=0.01)
    assert summary["total"]["EUR"] == pytest.approx(sum(per_year.values()), abs=0.01)
    assert set(summary["by_rule"]) == {"EQ001", "EQ004"}


@pytest.fixture(autouse=True)
def _builder_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the sample builder importable as ``fhir_samples_builder``."""
    import importlib.util
    import sys

    if "fhir_samples_builder" not in sys.modules:
        spec = importlib.util.spec_from_file_location("fhir_samples_builder", SCENARIOS / "make_samples.py")
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        monkeypatch.setitem(sys.modules, "fhir_samples_builder", mod)


def test_scenario_files_are_up_to_date(tmp_path: Path) -> None:
    """The committed samples are exactly what make_samples.py writes."""
    import fhir_samples_builder as builder  # type: ignore[import-not-found]

    scen, rules = builder.SCEN, builder.RULES
    try:
        builder.SCEN, builder.RULES = tmp_path / "scen", tmp_path / "rules"
        builder.main()
    finally:
        builder.SCEN, builder.RULES = scen, rules
    for p in [*(tmp_path / "scen").glob("*.json"), *(tmp_path / "scen").glob("*.expect")]:
        assert p.read_bytes() == (SCENARIOS / p.name).read_bytes(), p.name
    for p in [*(tmp_path / "rules").glob("*/*.json"), *(tmp_path / "rules").glob("*/*.expect")]:
        assert p.read_bytes() == (SAMPLES / "rules" / p.parent.name / p.name).read_bytes(), p


def _eq_findings(bundle_dict: dict[str, Any], jurisdiction: str = "fr", rules: tuple[str, ...] = ("EQ",)) -> list[dict[str, Any]]:
    report = check(bundle_dict, as_of="2026-01-15", jurisdiction=jurisdiction, select=list(rules))
    return [f.to_dict() for f in report.findings]


def test_unit_prices_in_different_units_are_never_compared() -> None:
    """MOMETASONE SUBSTIPHARM is priced per spray dose, other members of its group per g; ROCEPHINE
    per vial, a generic per ml: a saving computed across those units would be invented."""
    from checker.economics.packs import comparable_units
    from fhir_samples_builder import bundle, order  # type: ignore[import-not-found]

    for text, cip13 in (("MOMETASONE SUBSTIPHARM 50 microgrammes/dose, suspension pour pulvérisation nasale",
                         "3400930151341"),
                        ("ROCEPHINE 1 g/3,5 mL, poudre et solvant pour solution injectable (IM)", "3400932675258")):
        found = _eq_findings(bundle(order("mr-u", text, cip13=cip13, dose=1, unit="dose", days=7)))
        priced = [f["suggestion"] for f in found if f["suggestion"] and "unit_price" in f["suggestion"]["with"]]
        for s in priced:
            assert comparable_units(s["replace"]["unit"], s["with"]["unit"]), s
        assert not any(s["replace"]["unit"] != s["with"]["unit"] for s in priced)


def test_every_eq001_comparison_in_the_bdpm_uses_comparable_units() -> None:
    """Over the whole répertoire: the substitute EQ001 would offer is counted in a unit comparable
    with the prescribed pack's (66 comparisons per g against per ml or per dose were found before)."""
    from checker.economics.packs import comparable_units
    from checker.economics.prices import bdpm_packs
    from checker.rules.cheaper import _cheapest_substitute

    idx = default_referentials().get("bdpm")
    compared = 0
    for cis, spec in idx.specialties.items():
        if not spec.generic_group:
            continue
        for pack in bdpm_packs(idx, cis):
            if pack.units is None or pack.unit_price is None:
                continue
            best = _cheapest_substitute(idx, cis, pack.units.unit)
            if best is not None:
                compared += 1
                assert best.units is not None and comparable_units(best.units.unit, pack.units.unit), (cis, pack, best)
    assert compared > 1000


def test_a_missing_cnops_price_is_not_a_free_product() -> None:
    """DIVARIUS 20 mg x 56 has PPV 0.00 in the CNOPS list (no public price): never offered at 0 MAD."""
    from fhir_samples_builder import bundle, order  # type: ignore[import-not-found]

    found = _eq_findings(bundle(order("mr-der", "DEROXAT 20 mg, comprimé pelliculé sécable", days=30)),
                         jurisdiction="ma", rules=("EQ001",))
    assert found
    for f in found:
        assert f["suggestion"]["with"]["unit_price"] > 0 and f["suggestion"]["with"]["pack_price"] > 0
    cnops = default_referentials().get("cnops-2014")
    divarius = [r for r in cnops.rows if r.code == "6118010115790"]
    assert divarius and divarius[0].ppv is None and divarius[0].prix_br == 238.0


def test_a_negative_or_zero_dose_claims_no_saving() -> None:
    from fhir_samples_builder import bundle, order  # type: ignore[import-not-found]

    for dose in (-1, 0):
        (f,) = _eq_findings(bundle(order("mr-neg", "TAHOR 20 mg, comprimé pelliculé", dose=dose)), rules=("EQ001",))
        assert f["suggestion"]["saving"]["amount"] is None
    report = check(bundle(order("mr-neg", "TAHOR 20 mg, comprimé pelliculé", dose=-1)), as_of="2026-01-15",
                   select=["EQ001"])
    assert report.savings()["total"] == {}


def test_check_json_and_text_give_savings_by_rule_and_substance() -> None:
    from checker.formats import render

    paths = [str(SCENARIOS / f"{n}.json") for n in ("tahor-20", "crestor-10")]
    report = check(paths, as_of="2026-01-15", select=["EQ"])
    data = orjson.loads(render(report, "json"))
    assert data["savings"] == report.savings() and set(data["savings"]["by_rule"]) == {"EQ001"}
    text = render(report, "text")
    assert "par règle : EQ001" in text and "atorvastatine" in text.split("par substance :")[1]  # French typography


def test_a_cancelled_or_never_taken_earlier_line_is_no_earlier_treatment() -> None:
    """EQ004 speaks at initiation; a cancelled earlier order, or a record that the drug was not taken,
    does not make the new line a continuation."""
    from fhir_samples_builder import bundle, order  # type: ignore[import-not-found]

    text = "LANTUS SOLOSTAR 100 unités/ml, solution injectable en stylo prérempli"
    lantus = order("mr-lantus", text, dose=20, unit="U")
    for status in ("cancelled", "entered-in-error"):
        earlier = order("mr-lantus-2025", text, dose=18, unit="U", authored="2025-06-01", status=status)
        assert [f["rule"] for f in _eq_findings(bundle(earlier, lantus), rules=("EQ004",))] == ["EQ004"]
    earlier = order("mr-lantus-2025", text, dose=18, unit="U", authored="2025-06-01", status="stopped")
    assert _eq_findings(bundle(earlier, lantus), rules=("EQ004",)) == []  # a stopped line was treatment
