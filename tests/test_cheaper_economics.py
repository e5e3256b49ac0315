"""Cost arithmetic of the cheaper-equivalent rules: pack contents, dose forms, units per day,
treatment length and savings (pure functions, no referential)."""

from __future__ import annotations

from datetime import date

import pytest

from checker.economics import CostComparison, form_key, normalise_strength, treatment_days, units_in_pack, units_per_day
from checker.economics.costs import LONG_TERM_MIN_DAYS, dose_in_units
from checker.model import Concept, Dispense, Dosage, MedicationOrder, Quantity


@pytest.mark.parametrize(
    "label, count, unit",
    [
        ("plaquette(s) PVC aluminium de 28 comprimé(s)", 28, "comprime"),
        ("30 plaquettes prédécoupées unitaires polyamide aluminium PVC-Aluminium de 1 comprimé", 30, "comprime"),
        ("50 plaquette(s) thermoformée(s) PVC PVDC aluminium de 1 comprimé(s)", 50, "comprime"),
        ("3 plaquette(s) de 28 comprimé(s)", 84, "comprime"),
        ("plaquette(s) thermoformée(s) PVC PVDC aluminium de 30 comprimé(s) (distributeur parallèle : PHARMALAB)", 30,
         "comprime"),
        ("5 cartouche(s) en verre dans stylo pré-rempli de 3 ml", 15, "ml"),
        ("1 flacon(s) en verre de 10  ml", 10, "ml"),
        ("plaquette(s) aluminium de 28 gélule(s)", 28, "gelule"),
        ("1 BOITE 30 COMPRIME", 30, "comprime"),
        ("1 BOITE 14 GELULE GASTRO-RESISTANTE", 14, "gelule"),
        ("1 BOITE 1 FLACON 40 ML", 40, "ml"),
        ("1 FLACON 60 ML", 60, "ml"),
    ],
)
def test_units_in_pack(label: str, count: float, unit: str) -> None:
    content = units_in_pack(label)
    assert content is not None
    assert content.count == count and content.unit == unit


def test_units_in_pack_unknown() -> None:
    assert units_in_pack("boîte") is None
    assert units_in_pack("") is None


def test_form_key_groups_oral_solids_and_keeps_release() -> None:
    assert form_key("comprimé pelliculé") == form_key("comprimé pelliculé sécable") == form_key("COMPRIME ENROBE")
    assert form_key("gélule gastro-résistant(e)") == form_key("comprimé gastro-résistant(e)")
    assert form_key("comprimé pelliculé") != form_key("comprimé gastro-résistant(e)")
    assert form_key("comprimé à croquer") != form_key("comprimé pelliculé")
    assert form_key("comprimé orodispersible") != form_key("comprimé")


def test_normalise_strength() -> None:
    assert normalise_strength(Quantity(100, "µG")) == Quantity(0.1, "mg")
    assert normalise_strength(Quantity(1, "g")) == Quantity(1000, "mg")
    assert normalise_strength(Quantity(100, "UI/ml")) == Quantity(100, "U/ml")
    assert normalise_strength(None) is None


def _dosage(dose: float, unit: str, freq: float = 1, period: float = 1, period_unit: str = "d", **kw: object) -> Dosage:
    return Dosage(dose=Quantity(dose, unit), frequency=freq, period=period, period_unit=period_unit, **kw)  # type: ignore[arg-type]


def test_units_per_day_counts_and_amounts() -> None:
    # two tablets twice a day
    assert units_per_day([_dosage(2, "{tbl}", freq=2)], "comprime", None) == 4
    # 40 mg a day of a 20 mg tablet = 2 tablets
    assert units_per_day([_dosage(40, "mg")], "comprime", Quantity(20, "mg")) == pytest.approx(2)
    # 20 U of a 100 U/ml insulin = 0.2 ml
    assert units_per_day([_dosage(20, "U")], "ml", Quantity(100, "U/ml")) == pytest.approx(0.2)
    # one tablet a week
    assert units_per_day([_dosage(1, "{tbl}", period=1, period_unit="wk")], "comprime", None) == pytest.approx(1 / 7)
    # morning + evening lines add up
    assert units_per_day([_dosage(1, "{tbl}"), _dosage(1, "{tbl}")], "comprime", None) == 2


def test_units_per_day_unknown() -> None:
    assert units_per_day([], "comprime", None) is None
    assert units_per_day([Dosage(text="1 cp le soir")], "comprime", None) is None
    assert units_per_day([_dosage(1, "{tbl}", as_needed=True)], "comprime", None) is None
    assert units_per_day([_dosage(40, "mg")], "comprime", None) is None  # strength unknown
    assert dose_in_units(Quantity(5, "ml"), "comprime", Quantity(20, "mg")) is None


def _order(dosages: tuple[Dosage, ...] = (), dispense: Dispense | None = None) -> MedicationOrder:
    return MedicationOrder(ref="MedicationRequest/x", status="active", intent="order", medication=Concept(text="x"),
                           dosages=dosages, dispense=dispense)


def test_treatment_days() -> None:
    assert treatment_days(_order((_dosage(1, "{tbl}", bounds_days=90.0),))) == 90
    assert treatment_days(_order((_dosage(1, "{tbl}", bounds_start=date(2026, 1, 1), bounds_end=date(2026, 1, 10)),))) == 10
    assert treatment_days(_order(dispense=Dispense(supply_days=30, repeats=2))) == 90
    assert treatment_days(_order(dispense=Dispense(validity_start=date(2026, 1, 1), validity_end=date(2026, 4, 1)))) == 90
    assert treatment_days(_order()) is None


def test_cost_comparison_long_term_is_annualised() -> None:
    """≥ 28 days: the per-year figure is the daily saving × 365, whatever the prescribed days."""
    cmp = CostComparison("EUR", unit_price=0.30, alt_unit_price=0.20, units_per_day=2, days=30)
    assert cmp.cost_per_day == pytest.approx(0.6)
    assert cmp.saving_per_day == pytest.approx(0.2)
    assert cmp.saving_treatment == pytest.approx(6.0)
    assert cmp.long_term and cmp.saving_per_year == pytest.approx(0.2 * 365)
    s = cmp.saving_dict()
    assert s["period"] == "treatment" and s["amount"] == pytest.approx(6.0) and s["currency"] == "EUR"
    assert s["per_year"] == pytest.approx(73.0) and s["per_year_basis"] == "annualised"
    four_weeks = CostComparison("EUR", 1.0, 0.5, units_per_day=1, days=LONG_TERM_MIN_DAYS)
    assert four_weeks.saving_dict()["per_year_basis"] == "annualised"
    long = CostComparison("EUR", unit_price=1.0, alt_unit_price=0.5, units_per_day=1, days=730)
    assert long.saving_treatment == pytest.approx(365) and long.saving_per_year == pytest.approx(182.5)


def test_cost_comparison_short_course_keeps_treatment_amount() -> None:
    """< 28 days without repeats: the treatment amount is the per-year figure; repeats make it long-term."""
    short = CostComparison("EUR", unit_price=0.30, alt_unit_price=0.20, units_per_day=2, days=10)
    s = short.saving_dict()
    assert not short.long_term
    assert s["per_year"] == pytest.approx(2.0) == s["amount"] and s["per_year_basis"] == "treatment"
    renewed = CostComparison("EUR", 0.30, 0.20, units_per_day=2, days=10, repeats=2)
    r = renewed.saving_dict()
    assert renewed.long_term and r["per_year_basis"] == "annualised" and r["per_year"] == pytest.approx(73.0)
    assert r["repeats"] == 2


def test_cost_comparison_open_ended() -> None:
    cmp = CostComparison("MAD", unit_price=8.0, alt_unit_price=7.5, units_per_day=1, days=None)
    s = cmp.saving_dict()
    assert s["period"] == "year" and s["amount"] == pytest.approx(0.5 * 365) and s["per_year"] == pytest.approx(182.5)
    assert s["per_year_basis"] == "annualised"


def test_cost_comparison_without_dosage() -> None:
    by_quantity = CostComparison("EUR", 0.3, 0.2, units_per_day=None, days=None, dispensed_units=90)
    q = by_quantity.saving_dict()
    assert q["amount"] == pytest.approx(9.0) and q["per_year"] == pytest.approx(9.0)
    assert q["per_year_basis"] == "treatment"  # no daily figure: nothing to annualise
    with_repeats = CostComparison("EUR", 0.3, 0.2, units_per_day=None, days=None, dispensed_units=30, repeats=2)
    assert with_repeats.saving_dict()["amount"] == pytest.approx(9.0)  # 3 dispensings of 30
    unknown = CostComparison("EUR", 0.3, 0.2, units_per_day=None, days=None)
    s = unknown.saving_dict()
    assert s["amount"] is None and s["period"] == "unit" and s["per_unit"] == pytest.approx(0.1)


def test_immediate_release_oral_forms_are_one_form() -> None:
    """Art. L. 5121-1, 5° a CSP: for generics the immediate-release oral forms are one pharmaceutical
    form; release and route keep forms apart."""
    from checker.economics.packs import interchangeable_form as f

    oral = ("orale",)
    same = ["comprimé enrobé", "comprimé pelliculé sécable", "gélule", "lyophilisat oral", "comprimé orodispersible",
            "comprimé effervescent", "comprimé dispersible ou à croquer", "granulés", "solution buvable"]
    assert {f(x, oral) for x in same} == {"oral"}
    assert f("lyophilisat oral") == f("COMPRIME ORODISPERSIBLE") == f("COMPRIME PELLICULE") == "oral"  # no route given
    assert f("gélule à libération prolongée", oral) == f("microgranules à libération prolongée en gélule", oral) \
        == f("COMPRIME LP") == "oral lp"
    assert f("comprimé gastro-résistant", oral) == "oral gastro-resistant"
    assert len({f("comprimé", oral), f("comprimé à libération modifiée", oral), f("comprimé sublingual", ("sublinguale",)),
                f("comprimé vaginal", ("vaginale",)), f("solution injectable", ("intraveineuse",))}) == 5


def test_one_dose_containers_are_counted() -> None:
    """A sachet, a prefilled syringe or a vial of powder for injection is the dispensing unit; the grams of
    powder in it are not, and a flacon of powder for an oral suspension says no dose."""
    from checker.economics.packs import PackContent, units_in_pack as u

    assert u("28 sachet(s) polyéthylène aluminium polyester") == PackContent(28, "sachet")
    assert u("1 seringue(s) préremplie(s) polycyclooléfine avec 2 aiguille(s)") == PackContent(1, "seringue")
    inj = "poudre et solvant pour solution injectable"
    assert u("1 flacon(s) de poudre en verre de 1 g - 1 ampoule(s) de solvant en verre de 3,5 ml", inj) \
        == u("1 flacon(s) en verre de 1079,27  mg - 1 ampoule(s) en verre de 3,5  ml", inj) == PackContent(1, "flacon")
    assert u("20 sachet(s) de 10 g", "poudre pour solution buvable en sachet") == PackContent(20, "sachet")
    assert u("1 flacon(s) polyéthylène contenant 24,4 g de poudre avec seringue(s)", "poudre pour suspension buvable") is None
    assert u("1 tube de 30 g", "crème") == PackContent(30, "g")
