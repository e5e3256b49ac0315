"""CDS Hooks 2.0 service: ``pertinence serve`` exposes the checker to EHRs while the doctor prescribes.

``create_app(config) -> FastAPI`` builds the ASGI app; ``load_config(path)`` reads the TOML
configuration; ``feedback_stats(db)`` summarises card feedback (override rate per rule).
Importing this package does not import FastAPI: the app module loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from checker.service.config import AlertPolicy, ConfigError, ServiceConfig, load_config
from checker.service.feedback import feedback_stats

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app(config: ServiceConfig | None = None, **kwargs: Any) -> FastAPI:
    """Build the CDS Hooks app (see :func:`checker.service.app.create_app`)."""
    from checker.service.app import create_app as _create

    return _create(config, **kwargs)


__all__ = ["AlertPolicy", "ConfigError", "ServiceConfig", "create_app", "feedback_stats", "load_config"]
