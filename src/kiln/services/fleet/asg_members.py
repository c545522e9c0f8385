"""Which instances belong to which Auto Scaling group: those tagged ``aws:autoscaling:groupName``
(as EC2 tags them) in the group's account and region, in a live state. One query serves every group."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from kiln.runtime import records
from kiln.runtime.records import Instance
from kiln.runtime.teardown import LIVE_STATES
from kiln.services.fleet.launch import TEMPLATE_ID_TAG, TEMPLATE_VERSION_TAG

GROUP_TAG = "aws:autoscaling:groupName"
GroupKey = tuple[str, str, str]  # account, region, group name


def members_by_group(account: str | None = None) -> dict[GroupKey, list[Instance]]:
    """Live instances of every group (of ``account``, or of all accounts), oldest launch first."""
    found: dict[GroupKey, list[Instance]] = {}
    for instance in records.select(states=LIVE_STATES, account=account):
        name = instance.tags.get(GROUP_TAG)
        if name is not None:
            found.setdefault((instance.account_id, instance.region, name), []).append(instance)
    return found


def members(account: str, region: str, name: str) -> list[Instance]:
    return members_by_group(account).get((account, region, name), [])


def launched_from(instance: Instance) -> tuple[str | None, int | None]:
    """The launch template id and version number the instance was launched from."""
    version = instance.tags.get(TEMPLATE_VERSION_TAG, "")
    return instance.tags.get(TEMPLATE_ID_TAG), int(version) if version.isdigit() else None


def healthy(instance: Instance) -> bool:
    """EC2's status check as kiln can make it: running, and the sandbox's init process alive."""
    return instance.state == records.RUNNING and records.alive(instance.init)


def starting(instance: Instance) -> bool:
    """Being launched right now by a live process (counts toward capacity, is not yet healthy)."""
    return instance.state == records.PENDING and records.in_progress(instance)


def seconds_since_launch(instance: Instance, now: datetime) -> float:
    return (now - instance.launch_time).total_seconds()


def ids(instances: Iterable[Instance]) -> list[str]:
    return [instance.id for instance in instances]
