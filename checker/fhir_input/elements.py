"""Reading FHIR elements (strings, lists, CodeableConcepts, Quantities, references) with explicit type
checks; a wrong shape raises :class:`_Bad` with the element's path."""

from __future__ import annotations

from typing import Any

from checker.findings import Message
from checker.model import Coding, Concept, Quantity, SourceLocation


class _Bad(Exception):
    """Raised by extraction when an element has the wrong shape; carries the element path."""

    def __init__(self, path: str, message: Message, where: SourceLocation | None = None) -> None:
        super().__init__(f"{path}: {message.text('en', 'input_error')}")
        self.path = path
        self.message = message
        self.where = where  # another resource's location, when the bad element is in a resource referenced


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _list(res: dict[str, Any], name: str) -> list[Any]:
    value = res.get(name)
    if value is None:
        return []
    if isinstance(value, dict):  # a single object where a list is expected: tolerated
        return [value]
    if not isinstance(value, list):
        raise _Bad(f"/{name}", Message("expected-list", {"found": type(value).__name__}))
    return value


def _str_field(res: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = res.get(name)
    if value is None:
        if required:
            raise _Bad(f"/{name}", Message("required-missing"))
        return ""
    if not isinstance(value, str):
        raise _Bad(f"/{name}", Message("expected-string", {"found": type(value).__name__}))
    return value


def _concept(value: Any, path: str = "") -> Concept:
    if value is None:
        return Concept()
    if not isinstance(value, dict):
        raise _Bad(path, Message("expected-concept", {"found": type(value).__name__}))
    codings = value.get("coding") or []
    if isinstance(codings, dict):
        codings = [codings]
    if not isinstance(codings, list):
        raise _Bad(f"{path}/coding", Message("expected-codings"))
    out = []
    for i, c in enumerate(codings):
        if not isinstance(c, dict):
            raise _Bad(f"{path}/coding/{i}", Message("coding-not-object"))
        code = c.get("code")
        if code is None:
            if c.get("display"):
                out.append(Coding(_s(c.get("system")), "", _s(c.get("display"))))
            continue
        if not isinstance(code, (str, int)):
            raise _Bad(f"{path}/coding/{i}/code", Message("code-not-string"))
        out.append(Coding(_s(c.get("system")), str(code).strip(), _s(c.get("display"))))
    return Concept(tuple(out), _s(value.get("text")))


def _concepts(values: list[Any], path: str) -> tuple[Concept, ...]:
    if not values:
        return ()
    return tuple(_concept(v, f"{path}/{i}") for i, v in enumerate(values))


def _quantity(value: Any, path: str = "") -> Quantity | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Bad(path, Message("expected-quantity"))
    v = value.get("value")
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        if isinstance(v, str):
            try:
                v = float(v.replace(",", "."))
            except ValueError:
                raise _Bad(f"{path}/value", Message("not-a-number", {"value": repr(v)})) from None
        else:
            raise _Bad(f"{path}/value", Message("expected-number"))
    return Quantity(float(v), _s(value.get("code")) or _s(value.get("unit")))


def _ref(value: Any) -> str:
    return _s(value.get("reference")) if isinstance(value, dict) else ""


def _status(res: dict[str, Any], name: str = "status") -> str:
    return _str_field(res, name)


_UCUM_TIME = {"day": "d", "days": "d", "jour": "d", "jours": "d", "week": "wk", "weeks": "wk", "semaine": "wk",
              "semaines": "wk", "month": "mo", "months": "mo", "mois": "mo", "year": "a", "years": "a", "an": "a",
              "ans": "a", "hour": "h", "hours": "h", "h": "h", "d": "d", "wk": "wk", "mo": "mo", "a": "a"}


def _ucum_time(unit: str) -> str:
    return _UCUM_TIME.get(unit.strip().lower(), unit)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _status_code(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    concept = _concept(value, path)
    return concept.codings[0].code if concept.codings else ""
