"""Pertinence: guideline conformity checks for FHIR prescriptions.

>>> from checker import check
>>> report = check(["fhir_samples/demo"])          # doctest: +SKIP
>>> [f.rule for f in report.findings]               # doctest: +SKIP
"""

from __future__ import annotations

from checker.api import check
from checker.findings import VERSION as __version__
from checker.findings import Finding, InputError, Report, Severity, Source

__all__ = ["check", "Finding", "InputError", "Report", "Severity", "Source", "__version__"]
