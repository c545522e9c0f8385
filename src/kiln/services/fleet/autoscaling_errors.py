"""Amazon EC2 Auto Scaling's errors, one class per wire code, on kiln's error hierarchy.

Auto Scaling speaks the query protocol: modelled faults have their own codes, and everything else
(bad sizes, an unknown group, a bad launch template) is ``ValidationError``, HTTP 400. ``str()``
puts the code in front, as EC2's and SSM's errors do.
"""

from __future__ import annotations

from kiln.errors import AlreadyExists, Conflict, InvalidInput, KilnError, NotFound


class AutoScalingError(KilnError):
    code = "InternalFailure"
    http_status = 400

    def __str__(self) -> str:
        return f"{self.code}: {super().__str__()}"


class ValidationError(AutoScalingError, InvalidInput):
    code = "ValidationError"


class GroupNotFound(ValidationError, NotFound):
    """An unknown group: Auto Scaling answers ``ValidationError`` (HTTP 400), not a 404."""

    http_status = 400

    def __init__(self, name: str) -> None:
        super().__init__(f"AutoScalingGroup name not found - AutoScalingGroup {name} not found",
                         location="AutoScalingGroupName",
                         hint="`kiln asg describe` lists this account's groups in the region")


class GroupAlreadyExists(AutoScalingError, AlreadyExists):
    code = "AlreadyExists"
    http_status = 400


class ResourceInUse(AutoScalingError, Conflict):
    code = "ResourceInUse"


class ScalingActivityInProgress(AutoScalingError, Conflict):
    code = "ScalingActivityInProgress"


class InstanceRefreshInProgress(AutoScalingError, Conflict):
    code = "InstanceRefreshInProgress"


class ActiveInstanceRefreshNotFound(AutoScalingError, NotFound):
    code = "ActiveInstanceRefreshNotFound"
    http_status = 400


class IrreversibleInstanceRefresh(AutoScalingError, InvalidInput):
    code = "IrreversibleInstanceRefresh"
