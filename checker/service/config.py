"""Service configuration: a TOML file read once at start-up, validated with clear errors.

Example (every key optional)::

    [server]
    base_url = "https://cds.example.org"   # public URL: the JWT ``aud`` is base_url + request path
    jurisdiction = "fr"
    lang = "fr"
    feedback_db = "pertinence-feedback.sqlite3"   # default: in the user data folder (see default_feedback_db)

    [auth]
    enabled = true
    jwks_file = "ehr-jwks.json"            # or jwks_url = "https://ehr.example.org/jwks.json"
    issuers = ["https://ehr.example.org"]
    algorithms = ["ES384", "RS384"]
    leeway_seconds = 30

    [limits]
    max_body_bytes = 2000000
    max_resources = 5000
    max_draft_orders = 200                  # draft orders in one request (413 over it)
    max_orders = 500                        # medication + service orders of the patient in one request
    timeout_seconds = 5.0

    [fhir]                                  # fetching what the prefetch lacks from fhirServer
    timeout_seconds = 3.0                   # per prefetch key, all its pages included
    max_bytes = 5000000                     # per page
    max_results = 500                       # per prefetch key, all pages together
    max_pages = 10                          # per prefetch key

    [fhir.servers]                          # trusted issuer -> the FHIR server base URLs its requests may name
    "https://ehr.example.org" = ["https://ehr.example.org/fhir"]

    [feedback]                              # feedback endpoint and card log bounds (defaults shown)
    accept_window_hours = 72                # feedback only for cards issued this recently
    max_batch = 100                         # items per request (more: 413)
    max_items_per_minute = 600              # per caller (JWT iss, else client address; more: 429)
    card_retention_days = 30
    max_card_rows = 2000000                 # card log, oldest dropped first
    feedback_retention_days = 730
    max_feedback_rows = 1000000             # oldest dropped first
    max_text_chars = 1000                   # userComment

    [alerts]                                # alert-fatigue controls
    min_severity = { order-select = "warning", order-sign = "info" }
    disabled_rules = ["EQ"]
    severity_overrides = { DU001 = "info" }
    never_suppress = ["contraindication", "allergy", "CI"]  # categories and levels: warning/critical findings

    [sites."tenant-or-issuer"]             # per-site controls, matched on the JWT tenant, then iss
    severity_overrides = { IX002 = "info" }
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from checker.findings import CATEGORIES, Finding, Severity
from checker.service.feedback import FeedbackLimits
from checker.service.urls import url_problem

HOOKS = ("order-select", "order-sign", "medication-prescribe")
DEFAULT_NEVER_SUPPRESS = ("contraindication", "allergy", "CI")


class ConfigError(ValueError):
    """The configuration file is unreadable or has a wrong value; the message names file and key."""


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Alert-fatigue controls: which findings become cards, at which severity.

    ``never_suppress`` lists rule ids (or id prefixes), finding categories, or interaction levels
    (``CI``): matching findings always become cards, whatever the other settings say, and keep their
    severity. A category or a level protects findings at warning or critical only: an info-level note
    of the category (e.g. PR003's "renal function not recorded: could not check") is not a
    contraindication and stays under the severity floor. A rule named by its id is always protected.
    """

    min_severity: dict[str, Severity] = field(default_factory=dict)  # hook -> floor
    disabled_rules: tuple[str, ...] = ()
    severity_overrides: dict[str, Severity] = field(default_factory=dict)
    never_suppress: tuple[str, ...] = DEFAULT_NEVER_SUPPRESS

    def protected(self, f: Finding) -> bool:
        """True when ``f`` matches the never-suppress list.

        Items: a category (``contraindication``), a rule id (``IX001``) or ``rule:<prefix>``, or an
        interaction level token (``CI``, ``level:CI``) matched against the finding's level. Categories
        and levels match warning and critical findings only (the finding's own severity, before any
        site override).
        """
        levels = set(re.split(r"[^A-Z]+", (f.level or "").upper())) - {""}
        alert = f.severity.rank >= Severity.WARNING.rank
        for item in self.never_suppress:
            kind, _, value = item.partition(":") if ":" in item else ("", "", item)
            if kind == "category" or (not kind and value in CATEGORIES):
                if alert and f.category == value:
                    return True
            elif kind == "rule" or (not kind and re.fullmatch(r"[A-Z]{2}\d{3}", value)):
                if f.rule.startswith(value.upper()):
                    return True
            elif alert and value.upper() in levels:
                return True
        return False

    def passes_floor(self, severity: Severity, hook: str) -> bool:
        """True when a card of ``severity`` is at or above the minimum severity set for ``hook``."""
        floor = self.min_severity.get(hook)
        return floor is None or severity.rank >= floor.rank

    def apply(self, findings: list[Finding], hook: str) -> list[Finding]:
        """The findings that become cards for ``hook``, with site severities applied."""
        out = []
        for f in findings:
            if self.protected(f):
                out.append(f)
                continue
            if any(f.rule.startswith(p) for p in self.disabled_rules):
                continue
            override = next((s for p, s in sorted(self.severity_overrides.items(), key=lambda kv: -len(kv[0]))
                             if f.rule.startswith(p)), None)
            if override is not None:
                f = replace(f, severity=override)
            if not self.passes_floor(f.severity, hook):
                continue
            out.append(f)
        return out

    def merged(self, site: AlertPolicy | None) -> AlertPolicy:
        """This policy with a site's settings laid over it (site wins key by key)."""
        if site is None:
            return self
        return AlertPolicy(
            min_severity={**self.min_severity, **site.min_severity},
            disabled_rules=tuple(dict.fromkeys(self.disabled_rules + site.disabled_rules)),
            severity_overrides={**self.severity_overrides, **site.severity_overrides},
            never_suppress=tuple(dict.fromkeys(self.never_suppress + site.never_suppress)),
        )


@dataclass(frozen=True, slots=True)
class AuthConfig:
    enabled: bool = True
    jwks_file: str | None = None
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None  # an inline JWK Set (tests, embedded deployments)
    issuers: tuple[str, ...] = ()
    algorithms: tuple[str, ...] = ("ES384", "RS384", "ES256", "RS256", "ES512", "RS512", "PS256", "PS384", "PS512")
    leeway_seconds: int = 30
    max_token_lifetime_seconds: int = 3600


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = 2_000_000
    max_resources: int = 5_000
    timeout_seconds: float = 5.0
    max_concurrent_checks: int = 8
    max_draft_orders: int = 200
    max_orders: int = 500


@dataclass(frozen=True, slots=True)
class FhirFetch:
    """Reading what the prefetch lacks from the request's ``fhirServer``.

    ``servers`` binds each trusted issuer (the JWT ``iss``) to the FHIR server base URLs its requests
    may name; a request naming any other server gets nothing fetched (and the EHR's token is not sent).
    Empty (the default): nothing is ever fetched. With authentication disabled (local demos) there is no
    issuer, and every configured server is allowed.
    """

    timeout_seconds: float = 3.0
    max_bytes: int = 5_000_000
    servers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    max_results: int = 500
    max_pages: int = 10

    def servers_for(self, issuer: str | None) -> tuple[str, ...]:
        """The base URLs bound to ``issuer`` (None, authentication disabled: every configured one)."""
        if issuer is None:
            return tuple(dict.fromkeys(b for bases in self.servers.values() for b in bases))
        return self.servers.get(issuer, ())


def default_feedback_db() -> Path:
    """Where the feedback database lives by default: the user data folder (platformdirs), e.g.
    ``~/.local/share/pertinence/pertinence-feedback.sqlite3`` on Linux; ``PERTINENCE_DATA_DIR`` overrides it."""
    import os

    from platformdirs import user_data_path

    base = os.environ.get("PERTINENCE_DATA_DIR")
    return (Path(base) if base else user_data_path("pertinence", appauthor=False)) / "pertinence-feedback.sqlite3"


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Everything ``create_app`` needs; build it with :func:`load_config` or directly in tests."""

    base_url: str | None = None
    jurisdiction: str = "fr"
    lang: str = "fr"
    feedback_db: str = field(default_factory=lambda: str(default_feedback_db()))
    as_of: str | None = None  # fixed "today" (tests, demos); None: the real date per request
    auth: AuthConfig = field(default_factory=AuthConfig)
    limits: Limits = field(default_factory=Limits)
    fhir: FhirFetch = field(default_factory=FhirFetch)
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    sites: dict[str, AlertPolicy] = field(default_factory=dict)
    warn_missing_data: bool = True
    feedback: FeedbackLimits = field(default_factory=FeedbackLimits)  # feedback endpoint and card log bounds

    def policy_for(self, tenant: str | None, issuer: str | None) -> AlertPolicy:
        site = self.sites.get(tenant or "") or self.sites.get(issuer or "")
        return self.alerts.merged(site)


def load_config(path: str | Path | None = None, **overrides: Any) -> ServiceConfig:
    """Read a TOML configuration file (or none: defaults) and apply keyword overrides."""
    data: dict[str, Any] = {}
    where = "<defaults>"
    if path is not None:
        p = Path(path)
        where = str(p)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{p}: configuration file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    AuthD, FhirD, ServiceD = AuthConfig(), FhirFetch(), ServiceConfig()  # noqa: N806
    known = {"server", "auth", "limits", "fhir", "alerts", "sites", "feedback"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(known))}")
    server = _table(data, "server", where)
    auth = _table(data, "auth", where)
    limits = _table(data, "limits", where)
    fhir = _table(data, "fhir", where)
    base = Path(path).parent if path is not None else Path(".")
    jwks_file = auth.get("jwks_file")
    if jwks_file and not Path(jwks_file).is_absolute():
        jwks_file = str(base / jwks_file)
    db = server.get("feedback_db", ServiceD.feedback_db)
    if path is not None and "feedback_db" in server and db != ":memory:" and not Path(db).is_absolute():
        db = str(base / db)
    cfg = ServiceConfig(
        base_url=_opt_str(server, "base_url", where),
        jurisdiction=_choice(server, "jurisdiction", ("fr", "ma"), "fr", where),
        lang=_choice(server, "lang", ("fr", "en"), "fr", where),
        feedback_db=str(db),
        as_of=_opt_str(server, "as_of", where),
        warn_missing_data=_bool(server, "warn_missing_data", True, where),
        auth=AuthConfig(
            enabled=_bool(auth, "enabled", True, where),
            jwks_file=jwks_file,
            jwks_url=_opt_str(auth, "jwks_url", where),
            issuers=tuple(_str_list(auth, "issuers", where)),
            algorithms=tuple(_str_list(auth, "algorithms", where)) or AuthD.algorithms,
            leeway_seconds=_int(auth, "leeway_seconds", AuthD.leeway_seconds, where),
            max_token_lifetime_seconds=_int(auth, "max_token_lifetime_seconds",
                                            AuthD.max_token_lifetime_seconds, where),
        ),
        limits=_positive_numbers(Limits, limits, where, "limits"),
        fhir=FhirFetch(
            timeout_seconds=_float(fhir, "timeout_seconds", FhirD.timeout_seconds, where),
            max_bytes=_int(fhir, "max_bytes", FhirD.max_bytes, where),
            servers=_servers(fhir, where, issuers=_str_list(auth, "issuers", where),
                             auth_enabled=_bool(auth, "enabled", True, where)),
            max_results=_int(fhir, "max_results", FhirD.max_results, where),
            max_pages=_int(fhir, "max_pages", FhirD.max_pages, where),
        ),
        alerts=_policy(_table(data, "alerts", where), f"{where}: [alerts]", default_protect=True),
        sites={name: _policy(tbl, f"{where}: [sites.{name}]", default_protect=False)
               for name, tbl in _table(data, "sites", where).items()},
        feedback=_feedback_limits(_table(data, "feedback", where), where),
    )
    return replace(cfg, **overrides) if overrides else cfg


def _servers(fhir: dict[str, Any], where: str, *, issuers: list[str], auth_enabled: bool) -> dict[str, tuple[str, ...]]:
    """``[fhir.servers]``: issuer -> list of FHIR server base URLs, each issuer trusted in ``[auth]``."""
    if "allowed_servers" in fhir:
        raise ConfigError(f"{where}: fhir.allowed_servers (a list for every caller) is replaced by [fhir.servers], "
                          'which binds FHIR servers to a trusted issuer: "https://ehr.example.org" = '
                          '["https://ehr.example.org/fhir"]')
    table = fhir.get("servers", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [fhir.servers] must be a table issuer = [FHIR server base URLs]")
    out: dict[str, tuple[str, ...]] = {}
    for issuer, bases in table.items():
        if auth_enabled and issuer not in issuers:
            raise ConfigError(f"{where}: [fhir.servers] {issuer!r} is not in auth.issuers; FHIR servers are bound "
                              "to a trusted issuer")
        if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
            raise ConfigError(f"{where}: [fhir.servers] {issuer!r} must be a list of URLs")
        for base in bases:
            problem = url_problem(base)
            if problem:
                raise ConfigError(f"{where}: [fhir.servers] {issuer!r}: {base!r}: {problem}")
        out[issuer] = tuple(bases)
    return out


def _policy(tbl: Any, where: str, *, default_protect: bool) -> AlertPolicy:
    if not isinstance(tbl, dict):
        raise ConfigError(f"{where}: expected a table")
    mins = tbl.get("min_severity", {})
    if isinstance(mins, str):  # one floor for every hook
        mins = {h: mins for h in HOOKS}
    if not isinstance(mins, dict):
        raise ConfigError(f"{where}: min_severity must be a severity or a table hook = severity")
    for hook in mins:
        if hook not in HOOKS:
            raise ConfigError(f"{where}: min_severity: unknown hook {hook!r} (use {', '.join(HOOKS)})")
    overrides = tbl.get("severity_overrides", {})
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}: severity_overrides must be a table RULE = severity")
    try:
        min_sev = {h: Severity.parse(v) for h, v in mins.items()}
        sev_over = {k.strip().upper(): Severity.parse(v) for k, v in overrides.items()}
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    never = _str_list(tbl, "never_suppress", where) if "never_suppress" in tbl else None
    return AlertPolicy(
        min_severity=min_sev,
        disabled_rules=tuple(r.strip().upper() for r in _str_list(tbl, "disabled_rules", where)),
        severity_overrides=sev_over,
        never_suppress=tuple(never) if never is not None else (DEFAULT_NEVER_SUPPRESS if default_protect else ()),
    )


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


def _opt_str(tbl: dict[str, Any], key: str, where: str) -> str | None:
    value = tbl.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string")
    return value


def _choice(tbl: dict[str, Any], key: str, choices: tuple[str, ...], default: str, where: str) -> str:
    value = tbl.get(key, default)
    if value not in choices:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _str_list(tbl: dict[str, Any], key: str, where: str) -> list[str]:
    value = tbl.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings")
    return value


def _int(tbl: dict[str, Any], key: str, default: int, where: str) -> int:
    value = tbl.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{where}: {key} must be a positive integer")
    return value


def _bool(tbl: dict[str, Any], key: str, default: bool, where: str) -> bool:
    """A TOML boolean: the string "false" is refused, not read as true."""
    value = tbl.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {key} must be true or false (a TOML boolean, without quotes)")
    return value


def _float(tbl: dict[str, Any], key: str, default: float, where: str) -> float:
    value = tbl.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{where}: {key} must be a positive number")
    return float(value)


def _feedback_limits(tbl: dict[str, Any], where: str) -> FeedbackLimits:
    """The ``[feedback]`` table: every key a positive number (see :class:`FeedbackLimits`)."""
    return _positive_numbers(FeedbackLimits, tbl, where, "feedback")


_N = TypeVar("_N", Limits, FeedbackLimits)


def _positive_numbers(cls: type[_N], tbl: dict[str, Any], where: str, section: str) -> _N:
    """A table of positive numbers read into ``cls``: each field keeps its default's type (a float
    default takes any number, an int default an integer); an unknown key is refused, since a misspelt
    limit would otherwise leave its default in force unnoticed."""
    d = cls()
    names = [f.name for f in fields(cls)]
    unknown = set(tbl) - set(names)
    if unknown:
        raise ConfigError(f"{where}: [{section}]: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"expected {', '.join(names)}")
    values: dict[str, Any] = {n: (_float if isinstance(getattr(d, n), float) else _int)(tbl, n, getattr(d, n), where)
                              for n in names}
    return cls(**values)
