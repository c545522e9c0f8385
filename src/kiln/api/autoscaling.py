"""Amazon EC2 Auto Scaling on the wire (the ``query`` protocol), as the caller's account in the
signing region: each operation a call of ``services/fleet`` (groups, reconcile, instance refresh).
A group launches from a launch template only: ``MixedInstancesPolicy``, ``LaunchConfigurationName``
and ``InstanceId`` are refused with ``ValidationError``."""

from __future__ import annotations

from typing import Any

from kiln.api import query
from kiln.api.errors import ApiError, Dialect
from kiln.api.paging import Limits
from kiln.api.protocol import Handler, Service
from kiln.api.sigv4 import Caller
from kiln.services.fleet import autoscaling, instance_refresh

_OTHER_SOURCES = ("MixedInstancesPolicy", "LaunchConfigurationName", "InstanceId")


def _where(caller: Caller) -> dict[str, str]:
    return {"account": caller.account_id, "region": caller.region}


def _launch_template(p: dict[str, Any], required: bool) -> dict[str, Any] | None:
    for member in _OTHER_SOURCES:
        if member in p:
            raise ApiError("ValidationError", f"kiln's groups launch from a LaunchTemplate; {member} is not supported")
    if required and "LaunchTemplate" not in p:
        raise ApiError("ValidationError", "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, "
                                          "InstanceId or MixedInstancesPolicy parameter.")
    return p.get("LaunchTemplate")


def _create(p: dict[str, Any], caller: Caller) -> dict[str, Any]:
    autoscaling.create_auto_scaling_group(
        p["AutoScalingGroupName"], launch_template=_launch_template(p, True) or {}, min_size=p["MinSize"],
        max_size=p["MaxSize"], desired_capacity=p.get("DesiredCapacity"), tags=p.get("Tags") or [],
        health_check_type=p.get("HealthCheckType", "EC2"), health_check_grace_period=p.get("HealthCheckGracePeriod"),
        default_instance_warmup=p.get("DefaultInstanceWarmup"), **_where(caller))
    return {}


def _update(p: dict[str, Any], caller: Caller) -> dict[str, Any]:
    autoscaling.update_auto_scaling_group(
        p["AutoScalingGroupName"], launch_template=_launch_template(p, False), min_size=p.get("MinSize"),
        max_size=p.get("MaxSize"), desired_capacity=p.get("DesiredCapacity"),
        health_check_grace_period=p.get("HealthCheckGracePeriod"),
        default_instance_warmup=p.get("DefaultInstanceWarmup"), **_where(caller))
    return {}


def _describe(p: dict[str, Any], caller: Caller) -> dict[str, Any]:
    filters = {f["Name"]: f.get("Values") or [] for f in p.get("Filters") or []}
    return autoscaling.describe_auto_scaling_groups(p.get("AutoScalingGroupNames") or [], filters=filters,
                                                    **_where(caller))


def _set_desired_capacity(p: dict[str, Any], caller: Caller) -> dict[str, Any]:
    autoscaling.set_desired_capacity(p["AutoScalingGroupName"], p["DesiredCapacity"], **_where(caller))
    return {}


HANDLERS: dict[str, Handler] = {
    "CreateAutoScalingGroup": _create,
    "UpdateAutoScalingGroup": _update,
    "DescribeAutoScalingGroups": _describe,
    "DeleteAutoScalingGroup": lambda p, c: autoscaling.delete_auto_scaling_group(
        p["AutoScalingGroupName"], force_delete=bool(p.get("ForceDelete")), **_where(c)),
    "SetDesiredCapacity": _set_desired_capacity,
    "StartInstanceRefresh": lambda p, c: instance_refresh.start_instance_refresh(
        p["AutoScalingGroupName"], preferences=p.get("Preferences"),
        desired_configuration=p.get("DesiredConfiguration"), strategy=p.get("Strategy", "Rolling"), **_where(c)),
    "DescribeInstanceRefreshes": lambda p, c: instance_refresh.describe_instance_refreshes(
        p["AutoScalingGroupName"], instance_refresh_ids=p.get("InstanceRefreshIds"), **_where(c)),
    "CancelInstanceRefresh": lambda p, c: instance_refresh.cancel_instance_refresh(
        p["AutoScalingGroupName"], **_where(c)),
}

DIALECT = Dialect(
    missing="ValidationError",
    invalid="ValidationError",
    unknown_parameter="ValidationError",
    unknown_operation="InvalidAction",
    unsupported="InvalidAction",
    malformed="MalformedQueryString",
    bad_token="InvalidNextToken",
    bad_limit="ValidationError",
    flat=True,
    kiln_codes={"InvalidParameterValueException": "ValidationError", "ResourceNotFoundException": "ValidationError",
                "ServiceException": "InternalFailure"},
)

SERVICE = Service("autoscaling", query, DIALECT, Limits(low=1, high=100, default=50), HANDLERS)
