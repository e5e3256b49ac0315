"""The facts layer: the only code answering "what did the record state about this patient on day D".

Rules and protocols ask it for conditions, allergies, observations, pregnancy, renal function,
age and the indications of an order, at the day an order is judged (:func:`order_day`). It reads
the model (:mod:`checker.model`) and the tables it is given (:class:`FactTables`), nothing else.
"""

from checker.facts.concepts import Code, ConceptSet, code_matches, concept_matches, concept_polarity, system_is
from checker.facts.indications import Indication, indications
from checker.facts.kidney import KidneyFunction, cockcroft_gault, creatinine_mg_dl, kidney_function_on, renal_below
from checker.facts.negation import affirmed, polarity
from checker.facts.record import (
    Fact,
    age_on,
    allergen_polarity,
    allergies_on,
    conditions_on,
    history_on,
    judgement_days,
    latest_observation,
    lists_allergies,
    lists_conditions,
    observations_on,
    order_day,
    pregnancy_evoked_on,
    pregnancy_on,
    renal_on,
    stated,
    weight_on,
)
from checker.facts.tables import FactTables, Population, parse

__all__ = [
    "Code", "ConceptSet", "Fact", "FactTables", "Indication", "Population", "affirmed", "age_on", "allergen_polarity",
    "allergies_on", "code_matches",
    "concept_matches", "concept_polarity", "conditions_on", "history_on", "indications", "judgement_days",
    "latest_observation", "lists_allergies", "lists_conditions", "observations_on", "order_day", "parse", "polarity", "pregnancy_evoked_on", "pregnancy_on", "renal_on", "stated", "system_is",
    "weight_on",
    "KidneyFunction", "cockcroft_gault", "creatinine_mg_dl", "kidney_function_on", "renal_below",
]
