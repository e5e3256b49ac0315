"""The protocols read free text through the facts layer's negation (one implementation):
see :mod:`checker.facts.negation`."""

from checker.facts.negation import affirmed, clauses, polarity

__all__ = ["affirmed", "clauses", "polarity"]
