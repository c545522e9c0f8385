"""Requests of each protocol as SDKs send them, and the error envelope each protocol answers with."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


@dataclass(frozen=True)
class Call:
    """A valid call of one protocol (what each auth test tampers with)."""

    protocol: str
    service: str
    method: str
    path: str
    body: bytes
    headers: dict[str, str]
    region: str = "local"


FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
CALLS = {
    "ec2": Call("ec2", "ec2", "POST", "/", b"Action=DescribeImages&Version=2016-11-15&Owner.1=self", FORM),
    "query": Call("query", "sts", "POST", "/", b"Action=GetCallerIdentity&Version=2011-06-15", FORM, "us-east-1"),
    "json": Call("json", "organizations", "POST", "/", b"{}",
                 {"Content-Type": "application/x-amz-json-1.1",
                  "X-Amz-Target": "AWSOrganizationsV20161128.DescribeOrganization"}, "us-east-1"),
    "rest-json": Call("rest-json", "imagebuilder", "POST", "/ListComponents", b"{}",
                      {"Content-Type": "application/json"}),
}


def error_code(protocol: str, headers: dict[str, str], body: bytes) -> str:
    """The error code of an answer, checking it has exactly the protocol's envelope."""
    if protocol == "ec2":
        root = ET.fromstring(body)
        assert root.tag == "Response", body  # no namespace, as EC2
        assert [child.tag for child in root] == ["Errors", "RequestID"], body
        error = root.find("Errors/Error")
        assert error is not None and error.findtext("Message") is not None, body
        assert root.findtext("RequestID"), body
        return str(error.findtext("Code"))
    if protocol == "query":
        root = ET.fromstring(body)
        assert root.tag == f"{{{STS_NS}}}ErrorResponse", body
        error = root.find(f"{{{STS_NS}}}Error")
        assert error is not None and error.findtext(f"{{{STS_NS}}}Type") in ("Sender", "Receiver"), body
        assert root.findtext(f"{{{STS_NS}}}RequestId"), body
        return str(error.findtext(f"{{{STS_NS}}}Code"))
    if protocol == "json":
        assert headers["content-type"] == "application/x-amz-json-1.1"
        data = json.loads(body)
        assert isinstance(data.get("message"), str), body
        assert headers.get("x-amzn-requestid"), headers
        return str(data["__type"])
    data = json.loads(body)
    assert isinstance(data.get("message"), str), body
    return headers["x-amzn-errortype"]
