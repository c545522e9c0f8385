"""SigV4 as botocore signs it: header and presigned forms, and every way a signature can be wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from kiln.api.sigv4 import AuthFailure, AuthKind, Request, verify

KEYS = {"AKIAKILNTESTKEY00001": ("210987654321", "s3cr3t/with+chars")}


def lookup(key: str) -> tuple[str, str] | None:
    return KEYS.get(key)


def signed(method: str, url: str, body: bytes = b"", *, service: str = "imagebuilder", secret: str | None = None,
           key: str = "AKIAKILNTESTKEY00001", presign: int | None = None, headers: dict | None = None) -> Request:
    credentials = Credentials(key, secret or KEYS.get(key, ("", "wrong"))[1])
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    if presign:
        SigV4QueryAuth(credentials, service, "us-east-1", expires=presign).add_auth(request)
    else:
        SigV4Auth(credentials, service, "us-east-1").add_auth(request)
    prepared = request.prepare()
    split = prepared.url.split("?", 1)
    path = split[0].split("127.0.0.1:8080", 1)[1] or "/"
    sent = {"Host": "127.0.0.1:8080", **dict(prepared.headers)}  # the HTTP client adds Host
    return Request(method, path, split[1] if len(split) > 1 else "", sent, body)


def test_header_signatures_verify() -> None:
    url = ("http://127.0.0.1:8080/GetImage?imageBuildVersionArn="
           "arn%3Aaws%3Aimagebuilder%3Alocal%3A123456789012%3Aimage%2Fweb%2F1.0.0%2F1")
    caller = verify(signed("GET", url, headers={"Host": "127.0.0.1:8080"}), lookup)
    assert (caller.account_id, caller.service, caller.region) == ("210987654321", "imagebuilder", "us-east-1")
    body = b'{"name": "web", "semanticVersion": "1.0.0"}'
    assert verify(signed("PUT", "http://127.0.0.1:8080/CreateComponent", body), lookup).account_id == "210987654321"
    form = b"Action=DescribeImages&Version=2016-11-15&Owner.1=self"
    assert verify(signed("POST", "http://127.0.0.1:8080/", form, service="ec2"), lookup).service == "ec2"


def test_presigned_query_verifies() -> None:
    request = signed("GET", "http://127.0.0.1:8080/ListComponents?owner=Self", presign=300)
    assert "X-Amz-Signature=" in request.query
    assert verify(request, lookup).account_id == "210987654321"
    later = datetime.now(UTC) + timedelta(seconds=600)
    with pytest.raises(AuthFailure) as caught:
        verify(request, lookup, now=later)
    assert caught.value.kind is AuthKind.EXPIRED


@pytest.mark.parametrize(
    ("tamper", "kind"),
    [
        (lambda r: Request(r.method, r.path, r.query, r.headers, r.body + b" "), AuthKind.BAD_SIGNATURE),
        (lambda r: Request("POST", r.path, r.query, r.headers, r.body), AuthKind.BAD_SIGNATURE),
        (lambda r: Request(r.method, r.path, r.query, {k: v for k, v in r.headers.items() if k != "Authorization"},
                           r.body), AuthKind.MISSING),
        (lambda r: Request(r.method, r.path, r.query, {**r.headers, "Authorization": "AWS4-HMAC-SHA256 Credential=x"},
                           r.body), AuthKind.INCOMPLETE),
    ],
)
def test_tampered_requests_fail(tamper, kind: AuthKind) -> None:
    request = signed("PUT", "http://127.0.0.1:8080/CreateComponent", b'{"name": "web"}')
    with pytest.raises(AuthFailure) as caught:
        verify(tamper(request), lookup)
    assert caught.value.kind is kind


def test_wrong_secret_and_unknown_key() -> None:
    with pytest.raises(AuthFailure) as wrong:
        verify(signed("GET", "http://127.0.0.1:8080/ListImages", secret="not-the-secret"), lookup)
    assert wrong.value.kind is AuthKind.BAD_SIGNATURE
    assert wrong.value.message.startswith("The request signature we calculated does not match")
    with pytest.raises(AuthFailure) as unknown:
        verify(signed("GET", "http://127.0.0.1:8080/ListImages", key="AKIAUNKNOWNKEY000000"), lookup)
    assert unknown.value.kind is AuthKind.UNKNOWN_KEY


@pytest.mark.parametrize("minutes", [-6, 6])
def test_clock_skew_over_five_minutes(minutes: int) -> None:
    request = signed("GET", "http://127.0.0.1:8080/ListImages")
    with pytest.raises(AuthFailure) as caught:
        verify(request, lookup, now=datetime.now(UTC) + timedelta(minutes=-minutes))
    assert caught.value.kind is AuthKind.EXPIRED
    assert caught.value.message.startswith("Signature expired" if minutes < 0 else "Signature not yet current")
    assert verify(request, lookup, now=datetime.now(UTC) + timedelta(minutes=4)).account_id == "210987654321"
