"""Batch audits of prescription exports: ``run_audit(inputs, AuditOptions(out=...))``.

See :mod:`checker.audit.pipeline` for the phases, :mod:`checker.audit.indicators` for the
prescriber indicators and ``docs/scaling.md`` for running it at national scale.
"""

from checker.audit.pipeline import AuditError, AuditOptions, expand_inputs, parse_size, run_audit

__all__ = ["AuditError", "AuditOptions", "expand_inputs", "parse_size", "run_audit"]
