"""What each protocol answers when a request cannot be taken: every SigV4 failure in each protocol's
codes and statuses, unknown actions and services, malformed and oversize bodies — each in exactly the
envelope AWS uses (EC2's <Response><Errors>, query's <ErrorResponse>, json's __type, rest-json's
x-amzn-ErrorType)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server, raw
from tests.api.wire import CALLS, error_code

# fleet-and-sharing.md §9: (code, status) per protocol and failure
EXPECTED = {
    "ec2": {"unknown-key": ("AuthFailure", 401), "bad-signature": ("AuthFailure", 401),
            "expired": ("RequestExpired", 400), "missing": ("MissingAuthenticationToken", 401),
            "incomplete": ("IncompleteSignature", 400)},
    "query": {"unknown-key": ("InvalidClientTokenId", 403), "bad-signature": ("SignatureDoesNotMatch", 403),
              "expired": ("SignatureDoesNotMatch", 403), "missing": ("MissingAuthenticationToken", 403),
              "incomplete": ("IncompleteSignature", 400)},
    "json": {"unknown-key": ("UnrecognizedClientException", 400), "bad-signature": ("InvalidSignatureException", 400),
             "expired": ("InvalidSignatureException", 400), "missing": ("MissingAuthenticationTokenException", 400),
             "incomplete": ("IncompleteSignatureException", 400)},
    "rest-json": {"unknown-key": ("UnrecognizedClientException", 403),
                  "bad-signature": ("InvalidSignatureException", 403),
                  "expired": ("InvalidSignatureException", 403),
                  "missing": ("MissingAuthenticationTokenException", 403),
                  "incomplete": ("IncompleteSignatureException", 403)},
}


def _attempt(server: Server, protocol: str, failure: str) -> tuple[int, str]:
    call = CALLS[protocol]
    service: str | None = call.service
    key, when, headers = server.key, None, dict(call.headers)
    if failure == "unknown-key":
        key = {"AccessKeyId": "AKIAUNKNOWNKEY000000", "SecretAccessKey": "x" * 40}
    elif failure == "bad-signature":
        key = {**server.key, "SecretAccessKey": "y" * 40}
    elif failure == "expired":
        when = datetime.now(UTC) - timedelta(minutes=20)
    elif failure == "missing":
        service = None
    elif failure == "incomplete":
        service = None
        headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={server.key['AccessKeyId']}/20240101/" \
                                   f"{call.region}/{call.service}/aws4_request"
    status, answer_headers, body = raw(server, call.method, call.path, call.body, headers, service=service, key=key,
                                       region=call.region, when=when)
    return status, error_code(protocol, answer_headers, body)


def test_every_auth_failure_in_every_protocol(server: Server) -> None:
    answered = {protocol: {failure: _attempt(server, protocol, failure)[::-1] for failure in failures}
                for protocol, failures in EXPECTED.items()}
    assert answered == EXPECTED
    for protocol, call in CALLS.items():  # and the same calls, signed right, succeed
        status, _, body = raw(server, call.method, call.path, call.body, call.headers, service=call.service,
                              region=call.region)
        assert status == (400 if protocol == "json" else 200), body  # no organization yet: a modelled error


def test_sdks_read_the_auth_errors(server: Server) -> None:
    stranger = {"AccessKeyId": "AKIAUNKNOWNKEY000000", "SecretAccessKey": "x" * 40}
    calls = {
        "ec2": lambda c: c.describe_images(Owners=["self"]),
        "sts": lambda c: c.get_caller_identity(),
        "organizations": lambda c: c.describe_organization(),
        "imagebuilder": lambda c: c.list_components(),
    }
    codes = {}
    for service, call in calls.items():
        with pytest.raises(ClientError) as caught:
            call(server.client(service, key=stranger))
        codes[service] = caught.value.response["Error"]["Code"]
    assert codes == {"ec2": "AuthFailure", "sts": "InvalidClientTokenId",
                     "organizations": "UnrecognizedClientException", "imagebuilder": "UnrecognizedClientException"}


def test_unknown_actions_and_services(server: Server) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    cases = [
        ("ec2", "ec2", "/", b"Action=LaunchRockets&Version=2016-11-15", form, "local", ("InvalidAction", 400)),
        ("ec2", "ec2", "/", b"Action=DescribeVpcs&Version=2016-11-15", form, "local", ("UnsupportedOperation", 400)),
        ("query", "sts", "/", b"Action=LaunchRockets&Version=2011-06-15", form, "us-east-1", ("InvalidAction", 400)),
        ("json", "organizations", "/", b"{}", {"X-Amz-Target": "AWSOrganizationsV20161128.LaunchRockets",
                                               "Content-Type": "application/x-amz-json-1.1"}, "us-east-1",
         ("UnknownOperationException", 400)),
        ("rest-json", "imagebuilder", "/LaunchRockets", b"{}", {}, "local", ("UnknownOperationException", 404)),
    ]
    for protocol, service, path, body, headers, region, expected in cases:
        status, answer_headers, answer = raw(server, "POST", path, body, headers, service=service, region=region)
        assert (error_code(protocol, answer_headers, answer), status) == expected, answer
    status, answer_headers, answer = raw(server, "POST", "/", b"{}", service="s3")
    assert (status, error_code("rest-json", answer_headers, answer)) == (400, "UnknownServiceException")


def test_malformed_and_invalid_requests(server: Server) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    json11 = {"Content-Type": "application/x-amz-json-1.1"}
    target = {**json11, "X-Amz-Target": "AWSOrganizationsV20161128.CreateOrganizationalUnit"}
    cases = [
        ("ec2", "ec2", b"Action=DescribeImages&Version=2016-11-15&Bogus=1", form, ("UnknownParameter", 400)),
        ("ec2", "ec2", b"Action=DeregisterImage&Version=2016-11-15", form, ("MissingParameter", 400)),
        ("ec2", "ec2", b"Action=DescribeImages&Version=2016-11-15&MaxResults=many", form,
         ("InvalidParameterValue", 400)),
        ("ec2", "ec2", b"Action=DescribeImages&Version=2016-11-15&Owner.x=self", form, ("UnknownParameter", 400)),
        ("ec2", "ec2", b"Action=DescribeImages&Version=2016-11-15&Owner.1=\xff", form, ("MalformedQueryString", 400)),
        ("query", "sts", b"Action=GetCallerIdentity&Version=2011-06-15&Bogus=1", form,
         ("InvalidParameterValue", 400)),
        ("json", "organizations", b"{not json", target, ("SerializationException", 400)),
        ("json", "organizations", b'{"ParentId": 7}', target, ("SerializationException", 400)),
        ("json", "organizations", b'{"Name": "x"}', target, ("InvalidInputException", 400)),
        ("rest-json", "imagebuilder", b"[1, 2]", {}, ("SerializationException", 400)),
    ]
    for protocol, service, body, headers, expected in cases:
        path = "/CreateComponent" if protocol == "rest-json" else "/"
        method = "PUT" if protocol == "rest-json" else "POST"
        region = "us-east-1" if service in ("sts", "organizations") else "local"
        status, answer_headers, answer = raw(server, method, path, body, headers, service=service, region=region)
        assert (error_code(protocol, answer_headers, answer), status) == expected, (body, answer)
    status, _, answer = raw(server, "POST", "/", b'{"Name": "x"}', target, service="organizations", region="us-east-1")
    assert b'"Reason": "INPUT_REQUIRED"' in answer


def test_oversize_requests_get_413_in_the_protocols_envelope(server: Server) -> None:
    big = b"x" * (4 * 1024 * 1024 + 1)
    for protocol, call in CALLS.items():
        status, headers, body = raw(server, call.method, call.path, big, call.headers, service=call.service,
                                    region=call.region)
        assert status == 413, body
        expected = "RequestEntityTooLargeException" if protocol == "rest-json" else "RequestEntityTooLarge"
        assert error_code(protocol, headers, body) == expected


def test_a_region_kiln_does_not_have(server: Server) -> None:
    with pytest.raises(ClientError) as caught:
        server.client("ec2", region="mars-north-1").describe_images()
    assert caught.value.response["Error"]["Code"] == "InvalidRegion"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert server.client("sts", region="mars-north-1").get_caller_identity()["Account"] == "123456789012"
