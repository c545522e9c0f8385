"""SSM Parameter Store on the wire (the ``json`` 1.1 protocol, ``X-Amz-Target: AmazonSSM.<Op>``), in
the caller's region and as the caller's account: each operation a call of ``services/parameters``.
Parameters are ``String``/``StringList`` of data type ``text`` or ``aws:ec2:image``, Standard tier;
members kiln does not keep (KeyId, AllowedPattern, Policies, Tags, another tier) are refused."""

from __future__ import annotations

from typing import Any

from kiln.api import json_protocol
from kiln.api.errors import ApiError, Dialect
from kiln.api.paging import Limits
from kiln.api.protocol import Handler, Service
from kiln.api.sigv4 import Caller
from kiln.errors import NotFound
from kiln.services.parameters import parameter_store as store

NOT_KEPT = ("KeyId", "AllowedPattern", "Policies", "Tags")


def _where(c: Caller) -> dict[str, str]:
    return {"account": c.account_id, "region": c.region}


def _put(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    for member in NOT_KEPT:
        if p.get(member):
            raise ApiError("ValidationException", f"kiln's parameter store does not keep {member}")
    if p.get("Tier", store.TIER) != store.TIER:
        raise ApiError("ValidationException", f"kiln's parameters are {store.TIER} tier, not {p['Tier']}")
    version = store.put_parameter(
        p["Name"], p["Value"], parameter_type=p.get("Type"), data_type=p.get("DataType"),
        description=p.get("Description"), overwrite=bool(p.get("Overwrite")), **_where(c),
    )
    return {"Version": version, "Tier": store.TIER}


def _get_parameters(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    found, invalid = [], []
    for name in p["Names"]:
        try:
            found.append(store.get_parameter(name, **_where(c)))
        except NotFound:
            invalid.append(name)
    return {"Parameters": found, "InvalidParameters": invalid}


def _matches(entry: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    for item in filters:
        key, option, values = item["Key"], item.get("Option", "Equals"), item.get("Values") or []
        field = {"Name": "Name", "Type": "Type", "DataType": "DataType"}.get(key)
        if field is None:
            raise ApiError("InvalidFilterKey", f"kiln filters parameters by Name, Type or DataType, not {key}")
        if option not in ("Equals", "BeginsWith") or (option == "BeginsWith" and key != "Name"):
            raise ApiError("InvalidFilterOption", f"option {option} does not go with {key}")
        value = str(entry[field])
        if not any(value == v or (option == "BeginsWith" and value.startswith(v)) for v in values):
            return False
    return True


def _describe(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    if p.get("Filters"):
        raise ApiError("InvalidFilterKey", "use ParameterFilters (kiln does not take the older Filters)")
    filters = p.get("ParameterFilters") or []
    found = [{k: v for k, v in entry.items() if k != "Value"} for entry in store.describe_parameters(**_where(c))]
    return {"Parameters": [entry for entry in found if _matches(entry, filters)]}


def _by_path(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    if p.get("ParameterFilters"):
        raise ApiError("InvalidFilterKey", "kiln does not filter GetParametersByPath")
    names = [entry["Name"] for entry in store.describe_parameters(
        path=p["Path"], recursive=bool(p.get("Recursive")), **_where(c))]
    return {"Parameters": [store.get_parameter(name, **_where(c)) for name in names]}


def _delete_parameters(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    deleted, invalid = [], []
    for name in p["Names"]:
        try:
            store.delete_parameter(name, **_where(c))
            deleted.append(name)
        except NotFound:
            invalid.append(name)
    return {"DeletedParameters": deleted, "InvalidParameters": invalid}


HANDLERS: dict[str, Handler] = {
    "PutParameter": _put,
    "GetParameter": lambda p, c: {"Parameter": store.get_parameter(p["Name"], **_where(c))},
    "GetParameters": _get_parameters,
    "GetParameterHistory": lambda p, c: {"Parameters": store.get_parameter_history(p["Name"], **_where(c))},
    "DescribeParameters": _describe,
    "GetParametersByPath": _by_path,
    "LabelParameterVersion": lambda p, c: store.label_parameter_version(
        p["Name"], p["Labels"], version=p.get("ParameterVersion"), **_where(c)),
    "UnlabelParameterVersion": lambda p, c: store.unlabel_parameter_version(
        p["Name"], p["ParameterVersion"], p["Labels"], **_where(c)),
    "DeleteParameter": lambda p, c: (store.delete_parameter(p["Name"], **_where(c)), {})[1],
    "DeleteParameters": _delete_parameters,
}

DIALECT = Dialect(
    missing="ValidationException",
    invalid="ValidationException",
    unknown_parameter="SerializationException",
    unknown_operation="UnknownOperationException",
    unsupported="UnsupportedOperation",
    malformed="SerializationException",
    bad_token="InvalidNextToken",
    bad_limit="ValidationException",
    flat=True,
    kiln_codes={
        "InvalidParameterValueException": "ValidationException",
        "InvalidRegion": "ValidationException",
        "ForbiddenException": "AccessDeniedException",
        "ServiceException": "InternalServerError",
    },
    statuses={"InternalServerError": 500},
)

SERVICE = Service("ssm", json_protocol, DIALECT, Limits(low=1, high=50, default=None), HANDLERS)
