"""Authenticating the EHR: a signed JWT in ``Authorization: Bearer`` on every call.

As HL7 CDS Hooks 2.0 "Trusting CDS Clients" describes (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients):
the EHR signs a JWT with its private key (asymmetric algorithms only: ``none`` and HMAC are
refused), with ``kid`` naming the key in its JWK Set; the payload carries ``iss`` (checked against an
allow-list), ``aud`` (the URL of the endpoint being called), ``exp``, ``iat`` and ``jti`` (a nonce:
a second use of the same ``jti`` is a replay and is refused). The JWK Set comes from a configured
file, URL or inline set; the ``jku`` header is not followed (the key set is agreed out of band).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from checker.service.config import AuthConfig

if TYPE_CHECKING:
    from joserfc.jwk import KeySetSerialization

_SYMMETRIC = {"HS256", "HS384", "HS512", "none"}


class AuthError(Exception):
    """The request is not authenticated; the message says why (sent back in a 401)."""


class ReplayCache:
    """``jti`` values seen and not yet expired (thread-safe, bounded by token lifetime)."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def claim(self, key: str, expires_at: float, now: float) -> bool:
        """Record ``key``; False when it was already used (a replay)."""
        with self._lock:
            if len(self._seen) >= self._max or len(self._seen) % 1024 == 0:
                for k in [k for k, exp in self._seen.items() if exp < now]:
                    del self._seen[k]
            if key in self._seen:
                return False
            if len(self._seen) >= self._max:
                raise AuthError("too many live tokens; retry later")
            self._seen[key] = expires_at
            return True


class JwtVerifier:
    """Verifies CDS Hooks bearer JWTs against the configured keys and issuers."""

    def __init__(self, config: AuthConfig, *, http_timeout: float = 3.0) -> None:
        self.config = config
        self.algorithms = [a for a in config.algorithms if a not in _SYMMETRIC]
        if not self.algorithms:
            raise ValueError("auth.algorithms lists no asymmetric algorithm (none and HMAC are not allowed)")
        if not config.issuers:
            raise ValueError("auth.issuers is empty: list the EHR issuers you trust (or run with --insecure-dev)")
        self._http_timeout = http_timeout
        self._lock = threading.Lock()
        self._last_fetch = 0.0
        self.keys = self._load_keys()
        self.replays = ReplayCache()

    def _load_keys(self) -> KeySet:
        c = self.config
        if c.jwks is not None:
            data = c.jwks
        elif c.jwks_file:
            path = Path(c.jwks_file)
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ValueError(f"{path}: JWK Set file not found") from None
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{exc.lineno}: JWK Set is not valid JSON ({exc.msg})") from None
        elif c.jwks_url:
            try:
                data = self._fetch_jwks(c.jwks_url)
            except Exception as exc:  # noqa: BLE001 - any failure: a clear start-up error
                raise ValueError(f"{c.jwks_url}: JWK Set could not be fetched ({type(exc).__name__}: {exc})") from None
        else:
            raise ValueError("authentication needs a JWK Set: auth.jwks_file or auth.jwks_url")
        try:
            # unvalidated JSON: import_key_set checks its shape (errors are caught below)
            return KeySet.import_key_set(cast("KeySetSerialization", data))
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"the JWK Set could not be read: {exc}") from None

    def _fetch_jwks(self, url: str) -> dict[str, Any]:
        import httpx

        resp = httpx.get(url, timeout=self._http_timeout, follow_redirects=False)
        resp.raise_for_status()
        if len(resp.content) > 1_000_000:
            raise ValueError(f"{url}: JWK Set larger than 1 MB")
        self._last_fetch = time.monotonic()
        return resp.json()

    def _refresh(self) -> None:
        """Re-read a JWKS URL when a token names an unknown key (at most once a minute)."""
        if not self.config.jwks_url or time.monotonic() - self._last_fetch < 60:
            return
        with self._lock:
            try:
                self.keys = KeySet.import_key_set(cast("KeySetSerialization", self._fetch_jwks(self.config.jwks_url)))
            except Exception:  # noqa: BLE001 - a failed refresh keeps the old keys
                self._last_fetch = time.monotonic()

    def verify(self, authorization: str | None, audience: str, *, now: float | None = None) -> dict[str, Any]:
        """Claims of a valid token for ``audience``; :class:`AuthError` otherwise."""
        if not authorization:
            raise AuthError("missing Authorization header (expected: Bearer <JWT>)")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("Authorization must be 'Bearer <JWT>'")
        token = token.strip()
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError) as exc:
            raise AuthError(f"malformed JWT: {exc}") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise AuthError(f"JWT algorithm {alg!r} not accepted (allowed: {', '.join(self.algorithms)})")
        if not header.get("kid"):
            raise AuthError("JWT header has no kid")
        try:
            self.keys.get_by_kid(header["kid"])
        except (JoseError, ValueError, KeyError):
            self._refresh()
        try:
            decoded = jwt.decode(token, self.keys, algorithms=self.algorithms)
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise AuthError(f"JWT signature not verified: {type(exc).__name__} {exc}".strip()) from None
        claims = decoded.claims
        now = time.time() if now is None else now
        leeway = self.config.leeway_seconds
        iss = claims.get("iss")
        if iss not in self.config.issuers:
            raise AuthError(f"issuer {iss!r} is not on the allow-list")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if _norm(audience) not in {_norm(a) for a in auds if isinstance(a, str)}:
            raise AuthError(f"audience {aud!r} is not this endpoint ({audience})")
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            raise AuthError("JWT has no numeric exp")
        if exp < now - leeway:
            raise AuthError("JWT expired")
        iat = claims.get("iat")
        if not isinstance(iat, (int, float)) or isinstance(iat, bool):
            raise AuthError("JWT has no numeric iat")
        if iat > now + leeway:
            raise AuthError("JWT issued in the future")
        if exp - iat > self.config.max_token_lifetime_seconds:
            raise AuthError(f"JWT lifetime over {self.config.max_token_lifetime_seconds} s")
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and nbf > now + leeway:
            raise AuthError("JWT not valid yet (nbf)")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise AuthError("JWT has no jti")
        if not self.replays.claim(f"{iss}\x1f{jti}", exp + leeway, now):
            raise AuthError("JWT already used (jti replay)")
        return dict(claims)


def _norm(url: str) -> str:
    return url.rstrip("/")
