"""EC2's error codes for instance requests, on kiln's error hierarchy."""

from __future__ import annotations

from kiln.errors import Conflict, InvalidRequest, NotFound


class InstanceNotFound(NotFound):
    code = "InvalidInstanceID.NotFound"


class IncorrectInstanceState(Conflict):
    """The instance is not in a state that allows the request (e.g. exec in a stopped instance)."""

    code = "IncorrectInstanceState"


class UnsupportedOperation(InvalidRequest):
    """The request does not apply to this instance (e.g. stopping an instance-store instance)."""

    code = "UnsupportedOperation"
