"""STS on the wire (the ``query`` protocol): ``GetCallerIdentity``, the account of the key that signed."""

from __future__ import annotations

from typing import Any

from kiln.api import query
from kiln.api.errors import Dialect
from kiln.api.paging import Limits
from kiln.api.protocol import Service
from kiln.api.sigv4 import Caller


def get_caller_identity(params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """kiln's access keys belong to an account, not to a user or role: the caller is the account's root."""
    return {"UserId": caller.account_id, "Account": caller.account_id, "Arn": f"arn:aws:iam::{caller.account_id}:root"}


DIALECT = Dialect(
    missing="MissingParameter",
    invalid="InvalidParameterValue",
    unknown_parameter="InvalidParameterValue",
    unknown_operation="InvalidAction",
    unsupported="InvalidAction",
    malformed="MalformedQueryString",
    bad_token="InvalidParameterValue",
    bad_limit="InvalidParameterValue",
    flat=True,
    kiln_codes={"InvalidParameterValueException": "InvalidParameterValue", "ServiceException": "InternalFailure"},
)

SERVICE = Service("sts", query, DIALECT, Limits(), {"GetCallerIdentity": get_caller_identity}, regional=False)
