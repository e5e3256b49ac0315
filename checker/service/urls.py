"""URLs the CDS service may call: a FHIR server base is plain http(s), with a host, no user
information, no query or fragment, no dot segments or encoded separators (shared by the
configuration, which checks bases at start-up, and the fetcher, which binds each request)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit


class NotBound(ValueError):
    """A URL the service must not call with the EHR's token (the message says why)."""


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a FHIR server base (None when it can): http(s), a host, no user
    information, no query or fragment, no dot segments or encoded separators, no spaces."""
    try:
        _origin(url)
    except NotBound as exc:
        return str(exc)
    if urlsplit(url).query:
        return "a base URL with a query string is refused"
    return None


def _origin(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path without trailing slash) of an http(s) URL; :class:`NotBound` when the
    URL is one the service refuses to call."""
    if not isinstance(url, str) or any(c.isspace() or ord(c) < 0x20 or c == "\\" for c in url):
        raise NotBound("not a plain URL (spaces, control characters or backslashes)")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise NotBound("not an http(s) URL")
    if "@" in parts.netloc:
        raise NotBound("a URL with user information (user@host) is refused")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise NotBound("the port is not a number") from None
    if not host:
        raise NotBound("the URL names no host")
    if parts.fragment:
        raise NotBound("a URL with a fragment is refused")
    path = parts.path
    lowered = path.lower()
    if any(seg in (".", "..") for seg in unquote(path).split("/")) or any(
            enc in lowered for enc in ("%2e", "%2f", "%5c", "%00")):
        raise NotBound("a path with dot segments or encoded separators is refused")
    return scheme, host, port or (443 if scheme == "https" else 80), path.rstrip("/")


def _under(url: str, base: tuple[str, str, int, str]) -> bool:
    """True when ``url`` is on ``base``'s scheme, host and port, under its path on a segment boundary."""
    try:
        scheme, host, port, path = _origin(url)
    except NotBound:
        return False
    return (scheme, host, port) == base[:3] and (path == base[3] or path.startswith(base[3] + "/"))
