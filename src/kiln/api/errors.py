"""Errors on the wire: one exception for every protocol, and what each auth failure is called by each.

A ``KilnError`` from the services keeps its ``code`` and ``http_status`` (codes are data on the error
classes); ``AUTH_ERRORS`` is the table of SigV4 failures per protocol family.
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


def from_kiln(error: KilnError) -> ApiError:
    message = str(error) if not error.hint else f"{error} ({error.hint})"
    return ApiError(error.code, message, status=error.http_status, sender=error.http_status < 500)


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
