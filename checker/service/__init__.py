"""CDS Hooks 2.0 service: ``pertinence serve`` exposes the checker to EHRs while the doctor prescribes.

``create_app(config) -> FastAPI`` builds the ASGI app; ``load_config(path)`` reads the TOML
configuration; ``feedback_stats(db)`` summarises card feedback (override rate per rule);
``app_from_env()`` is the factory each worker process of ``pertinence serve --workers N`` calls
(configuration file named by ``$PERTINENCE_SERVICE_CONFIG``).
Importing this package does not import FastAPI: the app module loads on first use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from checker.memo import relaxed_gc
from checker.service.config import AlertPolicy, ConfigError, ServiceConfig, load_config
from checker.service.feedback import feedback_stats

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app(config: ServiceConfig | None = None, **kwargs: Any) -> FastAPI:
    """Build the CDS Hooks app (see :func:`checker.service.app.create_app`)."""
    from checker.service.app import create_app as _create

    return _create(config, **kwargs)


CONFIG_ENV = "PERTINENCE_SERVICE_CONFIG"
"""Environment variable naming the TOML configuration file of the worker processes (empty: defaults)."""
INSECURE_ENV = "PERTINENCE_SERVICE_INSECURE_DEV"
"""``1``: the workers run with JWT authentication off (``serve --insecure-dev``, loopback only)."""


def config_from_env(environ: Mapping[str, str] | None = None) -> ServiceConfig:
    """The configuration the serving command handed to its workers through the environment."""
    env = os.environ if environ is None else environ
    cfg = load_config(env.get(CONFIG_ENV) or None)
    if env.get(INSECURE_ENV) == "1":
        cfg = replace(cfg, auth=replace(cfg.auth, enabled=False))
    return cfg


def app_from_env() -> FastAPI:
    """App factory of a worker process (``uvicorn checker.service:app_from_env --factory``): the
    configuration from :func:`config_from_env`, referentials loaded in this process (the compiled drug
    index from the on-disk cache the serving command filled before starting the workers), warmed up
    by one check of the discovery example before it serves."""
    with relaxed_gc():  # imports and referentials: long-lived objects the collector would rescan for nothing
        return create_app(config_from_env(), warm=True)


__all__ = ["CONFIG_ENV", "INSECURE_ENV", "AlertPolicy", "ConfigError", "ServiceConfig", "app_from_env", "config_from_env",
           "create_app", "feedback_stats", "load_config"]
