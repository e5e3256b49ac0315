"""Error responses: a FHIR OperationOutcome with a human-readable diagnostic, never a traceback."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

# HTTP status -> OperationOutcome issue code (FHIR R4 IssueType value set)
_ISSUE_CODE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    412: "incomplete",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    503: "timeout",
}


class ServiceError(Exception):
    """An error the service answers with ``status`` and an OperationOutcome."""

    def __init__(self, status: int, message: str, details: list[str] | None = None, *,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []
        self.headers = headers


def operation_outcome(status: int, message: str, details: list[str] | None = None) -> dict[str, Any]:
    code = _ISSUE_CODE.get(status, "exception" if status >= 500 else "processing")
    severity = "fatal" if status >= 500 else "error"
    issues = [{"severity": severity, "code": code, "diagnostics": message}]
    issues += [{"severity": "error", "code": code, "diagnostics": d} for d in details or []]
    return {"resourceType": "OperationOutcome", "issue": issues}


def outcome_response(status: int, message: str, details: list[str] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(operation_outcome(status, message, details), status_code=status, headers=headers)
