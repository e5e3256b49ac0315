"""Pertinence: guideline conformity checks for FHIR prescriptions.

>>> from checker import check
>>> report = check(["fhir_samples/demo"])          # doctest: +SKIP
>>> [f.rule for f in report.findings]               # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from checker.api import check  # noqa: E402
from checker.findings import Finding, InputError, Report, Severity, Source  # noqa: E402

__all__ = ["check", "Finding", "InputError", "Report", "Severity", "Source", "__version__"]
