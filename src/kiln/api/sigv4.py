"""Verifying AWS Signature Version 4 on a request, in the header form and the presigned query form.

``verify`` recomputes the signature with the secret of the access key the request names and answers
the account that key belongs to. What went wrong is an ``AuthFailure`` kind; each wire protocol turns a
kind into its own error code and status (``kiln.api.auth_errors``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=5)
MAX_PRESIGN_EXPIRES = 604800
_CREDENTIAL = re.compile(r"^(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request$")
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

SecretLookup = Callable[[str], "tuple[str, str] | None"]  # access key id -> (account id, secret)


class AuthKind(StrEnum):
    MISSING = "missing"
    INCOMPLETE = "incomplete"
    UNKNOWN_KEY = "unknown-key"
    BAD_SIGNATURE = "bad-signature"
    EXPIRED = "expired"


class AuthFailure(Exception):
    def __init__(self, kind: AuthKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Caller:
    account_id: str
    access_key_id: str
    region: str
    service: str


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as sent, still percent-encoded
    query: str  # the raw query string
    headers: Mapping[str, str]  # names in any case
    body: bytes


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="-_.~")


def canonical_path(path: str) -> str:
    """Non-S3 services encode the path twice: the path as sent (already encoded) is encoded again."""
    return urllib.parse.quote(path or "/", safe="/~")


def canonical_query(query: str, *, drop_signature: bool) -> str:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    encoded = sorted((_quote(k), _quote(v)) for k, v in pairs if not (drop_signature and k == "X-Amz-Signature"))
    return "&".join(f"{k}={v}" for k, v in encoded)


def _canonical_headers(headers: Mapping[str, str], signed: list[str]) -> str:
    lowered = {name.lower(): value for name, value in headers.items()}
    lines = []
    for name in signed:
        if name not in lowered:
            raise AuthFailure(AuthKind.INCOMPLETE, f"signed header {name!r} is missing from the request")
        lines.append(f"{name}:{' '.join(lowered[name].split())}\n")
    return "".join(lines)


@lru_cache(maxsize=1024)  # one per key, day, region and service: four HMACs a request saved
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _parse_authorization(value: str) -> dict[str, str]:
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        raise AuthFailure(AuthKind.INCOMPLETE, f"unsupported authorization algorithm {algorithm!r}")
    fields = {}
    for part in rest.split(","):
        name, sep, field_value = part.strip().partition("=")
        if sep:
            fields[name] = field_value
    if not {"Credential", "SignedHeaders", "Signature"} <= set(fields):
        raise AuthFailure(AuthKind.INCOMPLETE, "Authorization header requires Credential, SignedHeaders and Signature")
    return fields


@lru_cache(maxsize=256)  # the clients of one moment send the same few stamps (strptime is slow)
def _parse_time(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise AuthFailure(AuthKind.INCOMPLETE, f"X-Amz-Date {value!r} is not YYYYMMDDTHHMMSSZ") from None


def verify(request: Request, secrets: SecretLookup, *, now: datetime | None = None) -> Caller:
    """The caller, if ``request`` carries a valid SigV4 signature by a known key; AuthFailure otherwise."""
    now = now or datetime.now(UTC)
    headers = {name.lower(): value for name, value in request.headers.items()}
    query = dict(urllib.parse.parse_qsl(request.query, keep_blank_values=True))
    presigned = "X-Amz-Signature" in query
    if "authorization" in headers:
        fields = _parse_authorization(headers["authorization"])
        credential, signed, signature = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
        stamp = headers.get("x-amz-date") or ""
        expires = None
    elif presigned:
        if query.get("X-Amz-Algorithm") != ALGORITHM:
            raise AuthFailure(AuthKind.INCOMPLETE, "X-Amz-Algorithm must be AWS4-HMAC-SHA256")
        try:
            credential, signed = query["X-Amz-Credential"], query["X-Amz-SignedHeaders"]
            signature, stamp = query["X-Amz-Signature"], query["X-Amz-Date"]
            expires = int(query.get("X-Amz-Expires", "0"))
        except (KeyError, ValueError):
            raise AuthFailure(AuthKind.INCOMPLETE, "presigned request lacks a SigV4 query parameter") from None
        if not 1 <= expires <= MAX_PRESIGN_EXPIRES:
            raise AuthFailure(AuthKind.INCOMPLETE, "X-Amz-Expires must be between 1 and 604800 seconds")
    else:
        raise AuthFailure(AuthKind.MISSING, "Missing Authentication Token")
    scope = _CREDENTIAL.match(credential)
    if scope is None:
        raise AuthFailure(AuthKind.INCOMPLETE, f"malformed credential scope {credential!r}")
    if not stamp:
        raise AuthFailure(AuthKind.INCOMPLETE, "the request has no X-Amz-Date")
    when = _parse_time(stamp)
    if scope["date"] != stamp[:8]:
        raise AuthFailure(AuthKind.BAD_SIGNATURE, "the credential scope's date is not the X-Amz-Date's")
    if expires is None:
        if when < now - MAX_SKEW:
            raise AuthFailure(AuthKind.EXPIRED, f"Signature expired: {stamp} is now earlier than "
                              f"{(now - MAX_SKEW):%Y%m%dT%H%M%SZ} ({now:%Y%m%dT%H%M%SZ} - 5 min.)")
        if when > now + MAX_SKEW:
            raise AuthFailure(AuthKind.EXPIRED, f"Signature not yet current: {stamp} is still later than "
                              f"{(now + MAX_SKEW):%Y%m%dT%H%M%SZ} ({now:%Y%m%dT%H%M%SZ} + 5 min.)")
    elif now > when + timedelta(seconds=expires) or when > now + MAX_SKEW:
        raise AuthFailure(AuthKind.EXPIRED, f"Request has expired: signed at {stamp} for {expires} seconds")
    found = secrets(scope["key"])
    if found is None:
        raise AuthFailure(AuthKind.UNKNOWN_KEY, "The security token included in the request is invalid.")
    account_id, secret = found
    signed_headers = signed.split(";")
    if "host" not in signed_headers:
        raise AuthFailure(AuthKind.INCOMPLETE, "the Host header must be signed")
    # Presigned or not, non-S3 services sign the body's hash (S3's UNSIGNED-PAYLOAD only when declared).
    payload = headers.get("x-amz-content-sha256") or hashlib.sha256(request.body).hexdigest()
    if payload != UNSIGNED_PAYLOAD and payload != hashlib.sha256(request.body).hexdigest():
        raise AuthFailure(AuthKind.BAD_SIGNATURE, "x-amz-content-sha256 does not match the body")
    canonical = "\n".join([
        request.method.upper(),
        canonical_path(request.path),
        canonical_query(request.query, drop_signature=presigned),
        _canonical_headers(headers, signed_headers),
        signed,
        payload,
    ])
    string_to_sign = "\n".join([
        ALGORITHM, stamp, credential.split("/", 1)[1], hashlib.sha256(canonical.encode()).hexdigest()
    ])
    key = signing_key(secret, scope["date"], scope["region"], scope["service"])
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise AuthFailure(AuthKind.BAD_SIGNATURE, "The request signature we calculated does not match the "
                          "signature you provided. Check your AWS Secret Access Key and signing method.")
    return Caller(account_id, scope["key"], scope["region"], scope["service"])
