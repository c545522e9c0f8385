"""The states of Image Builder images and EC2 instances, as the botocore models name them.

One module so that every "still building" or "live" test asks the same sets.
"""

from __future__ import annotations

from enum import StrEnum


class ImageStatus(StrEnum):
    """Image Builder's ``ImageStatus`` (the state of one build)."""

    PENDING = "PENDING"
    CREATING = "CREATING"
    BUILDING = "BUILDING"
    TESTING = "TESTING"
    DISTRIBUTING = "DISTRIBUTING"
    INTEGRATING = "INTEGRATING"
    AVAILABLE = "AVAILABLE"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    DEPRECATED = "DEPRECATED"
    DELETED = "DELETED"
    DISABLED = "DISABLED"


class InstanceState(StrEnum):
    """EC2's ``InstanceStateName``; ``code`` is the state's number in ``InstanceState.Code``."""

    PENDING = "pending"
    RUNNING = "running"
    SHUTTING_DOWN = "shutting-down"
    TERMINATED = "terminated"
    STOPPING = "stopping"
    STOPPED = "stopped"

    @property
    def code(self) -> int:
        return _INSTANCE_STATE_CODES[self]


_INSTANCE_STATE_CODES = {
    InstanceState.PENDING: 0,
    InstanceState.RUNNING: 16,
    InstanceState.SHUTTING_DOWN: 32,
    InstanceState.TERMINATED: 48,
    InstanceState.STOPPING: 64,
    InstanceState.STOPPED: 80,
}

# A build in one of these states is still running (its owner process may be asked whether it lives).
ACTIVE_BUILD_STATES: tuple[ImageStatus, ...] = (
    ImageStatus.PENDING,
    ImageStatus.CREATING,
    ImageStatus.BUILDING,
    ImageStatus.TESTING,
    ImageStatus.DISTRIBUTING,
    ImageStatus.INTEGRATING,
)
FINAL_BUILD_STATES: tuple[ImageStatus, ...] = tuple(s for s in ImageStatus if s not in ACTIVE_BUILD_STATES)
# An instance in one of these states holds its AMI (EC2's "in use"): every state but terminated.
LIVE_INSTANCE_STATES: tuple[InstanceState, ...] = tuple(s for s in InstanceState if s != InstanceState.TERMINATED)
