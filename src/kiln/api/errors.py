"""Errors on the wire: one exception for every protocol, what each service calls the errors of parsing
and paging (its ``Dialect``), and what each auth failure is called by each protocol family.

A ``KilnError`` from the services keeps its ``code`` and ``http_status`` (codes are data on the error
classes); a dialect renames kiln's generic codes (Image Builder's names) to the service's own.
``AUTH_ERRORS`` is the table of SigV4 failures per protocol family.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kiln.api.sigv4 import AuthFailure, AuthKind
from kiln.errors import KilnError


@dataclass
class ApiError(Exception):
    code: str
    message: str
    status: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    sender: bool = True  # query protocols' <Type>Sender</Type> (else Receiver)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class Dialect:
    """The error codes one service answers for requests it cannot take as they are."""

    missing: str  # a required member is absent
    invalid: str  # a value that is not of the member's type
    unknown_parameter: str  # a member the operation does not have
    unknown_operation: str
    unsupported: str  # an operation of the service's model that kiln does not answer (yet)
    malformed: str  # a body that does not parse
    bad_token: str  # a paging token kiln did not give for this request
    bad_limit: str  # a page size out of range
    too_large: str = "RequestEntityTooLarge"
    reasons: bool = False  # Organizations: InvalidInputException carries a Reason
    kiln_codes: dict[str, str] = field(default_factory=dict)  # kiln's generic codes -> the service's
    statuses: dict[str, int] = field(default_factory=dict)  # codes with a status of their own
    flat: bool = False  # every client error is 400 (EC2, query, json), whatever kiln's status says
    unknown_operation_status: int = 400

    def _error(self, code: str, message: str, reason: str, status: int | None = None) -> ApiError:
        return ApiError(code, message, status, {"Reason": reason} if self.reasons else {})

    def missing_member(self, name: str) -> ApiError:
        return self._error(self.missing, f"The request must contain the parameter {name}", "INPUT_REQUIRED")

    def invalid_value(self, name: str, value: Any, kind: str) -> ApiError:
        return self._error(self.invalid, f"Value ({value}) for parameter {name} is invalid: not a valid {kind}",
                           "INVALID_ENUM" if kind == "enum" else "INVALID_PATTERN")

    def unknown_member(self, name: str) -> ApiError:
        return self._error(self.unknown_parameter, f"The parameter {name} is not recognized", "INVALID_PATTERN")

    def no_operation(self, name: str) -> ApiError:
        return ApiError(self.unknown_operation, f"The action {name or '(none)'} is not valid for this web service.",
                        self.unknown_operation_status)

    def not_served(self, name: str) -> ApiError:
        return ApiError(self.unsupported, f"kiln does not implement {name} yet")

    def bad_body(self, detail: str) -> ApiError:
        return ApiError(self.malformed, detail)

    def token(self, name: str, detail: str) -> ApiError:
        return self._error(self.bad_token, f"{name} {detail}", "INVALID_NEXT_TOKEN")

    def limit(self, name: str, low: int, high: int) -> ApiError:
        return self._error(self.bad_limit, f"{name} must be between {low} and {high}", "MAX_VALUE_EXCEEDED")

    def oversize(self, limit: int) -> ApiError:
        return ApiError(self.too_large, f"request bodies are at most {limit} bytes", 413)

    def from_kiln(self, error: KilnError) -> ApiError:
        text = KilnError.__str__(error)  # without the code EC2's errors put in front for the CLI
        message = text if not error.hint else f"{text} ({error.hint})"
        code = self.kiln_codes.get(error.code, error.code)
        status = self.statuses.get(code)
        if status is None and self.flat:
            status = 400 if error.http_status < 500 else error.http_status
        fields = {"Reason": "INVALID_INPUT"} if self.reasons and code == "InvalidInputException" else {}
        return ApiError(code, message, status=status or error.http_status, fields=fields,
                        sender=error.http_status < 500)


# protocol family -> auth failure kind -> (code, HTTP status)
AUTH_ERRORS: dict[str, dict[AuthKind, tuple[str, int]]] = {
    "ec2": {
        AuthKind.MISSING: ("MissingAuthenticationToken", 401),
        AuthKind.INCOMPLETE: ("IncompleteSignature", 400),
        AuthKind.UNKNOWN_KEY: ("AuthFailure", 401),
        AuthKind.BAD_SIGNATURE: ("AuthFailure", 401),
        AuthKind.EXPIRED: ("RequestExpired", 400),
    },
    "query": {
        AuthKind.MISSING: ("MissingAuthenticationToken", 403),
        AuthKind.INCOMPLETE: ("IncompleteSignature", 400),
        AuthKind.UNKNOWN_KEY: ("InvalidClientTokenId", 403),
        AuthKind.BAD_SIGNATURE: ("SignatureDoesNotMatch", 403),
        AuthKind.EXPIRED: ("SignatureDoesNotMatch", 403),
    },
    "json": {
        AuthKind.MISSING: ("MissingAuthenticationTokenException", 400),
        AuthKind.INCOMPLETE: ("IncompleteSignatureException", 400),
        AuthKind.UNKNOWN_KEY: ("UnrecognizedClientException", 400),
        AuthKind.BAD_SIGNATURE: ("InvalidSignatureException", 400),
        AuthKind.EXPIRED: ("InvalidSignatureException", 400),
    },
    "rest-json": {
        AuthKind.MISSING: ("MissingAuthenticationTokenException", 403),
        AuthKind.INCOMPLETE: ("IncompleteSignatureException", 403),
        AuthKind.UNKNOWN_KEY: ("UnrecognizedClientException", 403),
        AuthKind.BAD_SIGNATURE: ("InvalidSignatureException", 403),
        AuthKind.EXPIRED: ("InvalidSignatureException", 403),
    },
}


def from_auth(failure: AuthFailure, protocol: str) -> ApiError:
    code, status = AUTH_ERRORS.get(protocol, AUTH_ERRORS["rest-json"])[failure.kind]
    return ApiError(code, failure.message, status=status)
