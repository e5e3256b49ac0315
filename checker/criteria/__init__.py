"""The criteria language: one set of typed, frozen criterion nodes and one evaluator.

The protocols' XML tests, the ANSM thesaurus' level conditions and the patient-risk rows are all
read into the nodes of :mod:`checker.criteria.nodes` (one parser per source format) and judged by
:func:`evaluate`, which answers yes, no or unknown, an unknown always naming the missing datum.
"""

from checker.criteria.evaluate import (
    EPSILON,
    NO,
    YES,
    BARE_REASON,
    AgeOn,
    BareReason,
    Context,
    Daily,
    Judge,
    Measured,
    Named,
    SexOf,
    Verdict,
    aspirin_category,
    compiled,
    evaluate,
    in_unit,
    unknown,
    value_passes,
)
from checker.criteria.nodes import (
    NODE_TYPES,
    Age,
    AllOf,
    Always,
    AnyOf,
    AspirinBand,
    CodeSpec,
    CriteriaError,
    Dose,
    HasAllergy,
    HasCondition,
    LineIn,
    Local,
    Matcher,
    Node,
    Not,
    Observation,
    OtherLines,
    Otherwise,
    Pair,
    Pregnant,
    RenalFunction,
    Route,
    RouteGate,
    Sex,
    Stated,
    Unstated,
    ValueTest,
    walk,
)
from checker.criteria.risks import RowCriteria, from_risk_row
from checker.criteria.thesaurus import from_thesaurus, mentions_route

__all__ = [
    "EPSILON", "NO", "YES", "BARE_REASON", "AgeOn", "BareReason", "Context", "Daily", "Judge", "Measured", "Named",
    "SexOf", "Verdict", "aspirin_category", "compiled", "evaluate", "in_unit", "unknown", "value_passes",
    "NODE_TYPES", "Age", "AllOf", "Always", "AnyOf", "AspirinBand", "CodeSpec", "Dose", "HasAllergy", "HasCondition", "LineIn", "Local", "Matcher",
    "Node", "Not", "Observation", "OtherLines", "Otherwise", "Pair", "Pregnant", "RenalFunction", "Route",
    "RouteGate", "Sex", "Stated", "Unstated", "ValueTest", "walk",
    "CriteriaError", "from_thesaurus", "mentions_route", "RowCriteria", "from_risk_row",
]
