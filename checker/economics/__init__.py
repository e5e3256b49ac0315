"""Economics: unit prices, cost per day from the dosage, savings, jurisdiction price referentials.

- :mod:`checker.economics.packs`: units per pack from a presentation label, dose-form keys.
- :mod:`checker.economics.costs`: units per day, treatment length, :class:`CostComparison`.
- :mod:`checker.economics.prices`: priced packs for France (BDPM) and Morocco (CNOPS).
"""

from checker.economics.costs import CostComparison, dose_in_units, treatment_days, units_per_day
from checker.economics.packs import PackContent, form_key, normalise_strength, units_in_pack
from checker.economics.prices import CURRENCY, PricedPack, cheapest

__all__ = [
    "CURRENCY", "CostComparison", "PackContent", "PricedPack", "cheapest", "dose_in_units", "form_key",
    "normalise_strength", "treatment_days", "units_in_pack", "units_per_day",
]
