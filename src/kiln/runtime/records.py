"""Instance rows in the database and the read-only view of them the rest of kiln gets.

Every state change is one transaction. A *transition* (launch, start, stop, reboot, terminate)
is claimed in the database before any work starts and names the process doing it, so a second
command (or recovery after a crash) can tell work in progress from work abandoned by a dead process.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kiln.ec2_errors import IncorrectInstanceState, InvalidInstanceIDNotFound
from kiln.model.states import InstanceState
from kiln.runtime import procs

PENDING, RUNNING = InstanceState.PENDING, InstanceState.RUNNING
STOPPING, STOPPED = InstanceState.STOPPING, InstanceState.STOPPED
SHUTTING_DOWN, TERMINATED = InstanceState.SHUTTING_DOWN, InstanceState.TERMINATED
STATE_CODES = {state: state.code for state in InstanceState}
ROOT_DEVICE_TYPES = ("ebs", "instance-store")
NETWORKS = ("none", "host")


@dataclass(frozen=True)
class Instance:
    """One instance as stored (a snapshot: read it again after a state change)."""

    id: str
    image_id: str | None
    region: str
    account_id: str
    instance_type: str
    state: str
    state_reason_code: str | None
    state_reason: str | None
    state_changed_at: datetime
    root_device_type: str
    network: str
    hostname: str
    vcpus: int
    memory_mib: int
    lower_dirs: tuple[Path, ...]
    paths: dict[str, Any]
    tags: dict[str, str]
    launch_time: datetime
    init: procs.ProcessId | None
    monitor: procs.ProcessId | None
    owner: procs.ProcessId | None
    owned: bool
    transition: str | None
    busy: procs.ProcessId | None = field(default=None)

    @property
    def dir(self) -> Path:
        return Path(self.paths["dir"])

    @property
    def upper_dir(self) -> Path:
        return Path(self.paths["upper"])

    @property
    def work_dir(self) -> Path:
        return Path(self.paths["work"])

    @property
    def merged_dir(self) -> Path:
        return Path(self.paths["merged"])

    @property
    def console_log(self) -> Path:
        return Path(self.paths["console"])

    @property
    def cgroups(self) -> list[Path]:
        return [Path(p) for p in self.paths.get("cgroups", [])]

    @property
    def host_local_network(self) -> bool:
        """On the network, the host's loopback and link-local addresses are reachable too."""
        return bool(self.paths.get("host_local_network", False))

    @property
    def network_helper(self) -> procs.ProcessId | None:
        """The slirp4netns process that connects the instance's network namespace (kiln.runtime.netns)."""
        helper = self.paths.get("network_helper")
        return procs.ProcessId(int(helper[0]), int(helper[1])) if helper else None

    @property
    def vm(self) -> dict[str, Any] | None:
        """A VM instance's settings and files (``kiln.runtime.vm``); None for a sandbox."""
        vm = self.paths.get("vm")
        return dict(vm) if vm else None

    def describe(self) -> dict[str, Any]:
        """EC2 ``DescribeInstances``-style fields, plus kiln's own under ``Kiln``."""
        data: dict[str, Any] = {
            "InstanceId": self.id,
            "ImageId": self.image_id,
            "InstanceType": self.instance_type,
            "State": {"Code": STATE_CODES[self.state], "Name": self.state},
            "LaunchTime": self.launch_time,
            "RootDeviceType": self.root_device_type,
            "RootDeviceName": "/dev/xvda",
            "PrivateDnsName": self.hostname,
            "CpuOptions": {"CoreCount": self.vcpus, "ThreadsPerCore": 1},
            "Placement": {"AvailabilityZone": f"{self.region}a"},
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(self.tags.items())],
            "Kiln": {
                "Region": self.region,
                "AccountId": self.account_id,
                "Network": self.network,
                "HostLocalNetwork": self.host_local_network,
                "MemoryMiB": self.memory_mib,
                "LimitsEnforced": bool(self.cgroups),
                "LowerDirs": [str(p) for p in self.lower_dirs],
                "RootVolume": str(self.upper_dir),
                "Root": str(self.merged_dir),
                "ConsoleLog": str(self.console_log),
                "InitPid": self.init.pid if self.init else None,
                "Owned": self.owned,
            },
        }
        if self.vm is not None:
            _describe_vm(data, self.vm, running=self.state == RUNNING)
        if self.state_reason_code:
            data["StateReason"] = {"Code": self.state_reason_code, "Message": self.state_reason or ""}
        return data


VM_NETWORK = "user-slirp"  # QEMU's user-mode network (libslirp): outbound NAT, SSH forwarded from loopback


def _describe_vm(data: dict[str, Any], vm: dict[str, Any], *, running: bool) -> None:
    """A VM instance's EC2 fields (key pair, metadata options, boot mode) and kiln's (accelerator, disks)."""
    if vm.get("key_name"):
        data["KeyName"] = vm["key_name"]
    data["BootMode"] = vm.get("boot_mode")
    data["MetadataOptions"] = {"State": "applied", "HttpTokens": vm.get("http_tokens", "optional"),
                               "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1}
    data["PrivateIpAddress"] = vm.get("local_ipv4")
    data["BlockDeviceMappings"] = [{"DeviceName": "/dev/xvda", "Ebs": {
        "DeleteOnTermination": bool(vm.get("delete_on_termination", True)), "Status": "attached"}}]
    data["Kiln"].update({
        "Hypervisor": "qemu",
        "Accelerator": vm.get("accel"),
        "AcceleratorReason": vm.get("accel_reason"),
        "RootVolume": vm.get("root"),
        "BackingDisk": vm.get("backing"),
        "SshPort": vm.get("ssh_port") if running else None,
        "Network": VM_NETWORK,
        "LowerDirs": [],
        "Root": None,
    })


def alive(process: procs.ProcessId | None) -> bool:
    return process is not None and procs.is_alive(process.pid, process.start_time)


def in_progress(instance: Instance) -> bool:
    """A live process is changing the instance's state right now."""
    return bool(instance.transition) and alive(instance.busy)


def needs_settling(instance: Instance) -> bool:
    """The stored state is not true any more: a transition was abandoned or the sandbox died."""
    if in_progress(instance):
        return False
    if instance.transition or instance.state in (PENDING, STOPPING, SHUTTING_DOWN):
        return True
    return instance.state == RUNNING and not alive(instance.init)


def _pid(pid: int | None, started: int | None) -> procs.ProcessId | None:
    return procs.ProcessId(pid, started or 0) if pid else None


def to_instance(row: Any) -> Instance:
    return Instance(
        id=row.id,
        image_id=row.image_id,
        region=row.region,
        account_id=row.account_id,
        instance_type=row.instance_type,
        state=row.state,
        state_reason_code=row.state_reason_code,
        state_reason=row.state_reason,
        state_changed_at=row.state_changed_at,
        root_device_type=row.root_device_type,
        network=row.network,
        hostname=row.hostname,
        vcpus=row.vcpus,
        memory_mib=row.memory_mib,
        lower_dirs=tuple(Path(p) for p in row.lower_dirs),
        paths=dict(row.paths),
        tags=dict(row.tags or {}),
        launch_time=row.launch_time,
        init=_pid(row.init_pid, row.init_start_time),
        monitor=_pid(row.monitor_pid, row.monitor_start_time),
        owner=_pid(row.owner_pid, row.owner_start_time),
        owned=bool(row.owned),
        transition=row.transition,
        busy=_pid(row.busy_pid, row.busy_start_time),
    )


def _new_row(values: dict[str, Any]) -> Any:
    from kiln.db.base import utcnow
    from kiln.db.tables.instances import InstanceRecord

    me = procs.current()
    now = utcnow()
    return InstanceRecord(**{
        "state": PENDING, "state_changed_at": now, "launch_time": now, "transition": "launch",
        "busy_pid": me.pid, "busy_start_time": me.start_time, "owner_pid": me.pid, "owner_start_time": me.start_time,
        **values,
    })


def draft(**values: Any) -> Instance:
    """The instance :func:`insert` would record, not recorded (a VM launch records it once QEMU runs)."""
    return to_instance(_new_row(values))


def insert(**values: Any) -> Instance:
    from kiln.db.engine import session

    row = _new_row(values)
    with session() as db:
        db.add(row)
        db.flush()
        return to_instance(row)


def recorded_ids(ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` name a recorded instance (in any state)."""
    from sqlalchemy import select as sql_select

    from kiln.db.engine import session
    from kiln.db.tables.instances import InstanceRecord

    with session() as db:
        return set(db.scalars(sql_select(InstanceRecord.id).where(InstanceRecord.id.in_(list(ids)))))


def get(instance_id: str) -> Instance:
    from kiln.db.engine import session
    from kiln.db.tables.instances import InstanceRecord

    with session() as db:
        row = db.get(InstanceRecord, instance_id)
        if row is None:
            raise InvalidInstanceIDNotFound(instance_id)
        return to_instance(row)


def select(
    *,
    states: Iterable[str] | None = None,
    image_id: str | None = None,
    ids: Sequence[str] | None = None,
    account: str | None = None,
) -> list[Instance]:
    from sqlalchemy import select as sql_select

    from kiln.db.engine import session
    from kiln.db.tables.instances import InstanceRecord

    query = sql_select(InstanceRecord).order_by(InstanceRecord.launch_time, InstanceRecord.id)
    if states is not None:
        query = query.where(InstanceRecord.state.in_(list(states)))
    if image_id is not None:
        query = query.where(InstanceRecord.image_id == image_id)
    if ids is not None:
        query = query.where(InstanceRecord.id.in_(list(ids)))
    if account is not None:
        query = query.where(InstanceRecord.account_id == account)
    with session() as db:
        return [to_instance(row) for row in db.scalars(query)]


def claim(instance_id: str, *, allowed: Sequence[str], state: str | None, transition: str) -> Instance:
    """Start a transition: the instance must be in ``allowed`` and not busy with a live process.

    Returns the instance as it was before the claim (its processes, paths, previous state).
    """
    from kiln.db.base import utcnow
    from kiln.db.engine import session
    from kiln.db.tables.instances import InstanceRecord

    me = procs.current()
    with session() as db:
        row = db.get(InstanceRecord, instance_id)
        if row is None:
            raise InvalidInstanceIDNotFound(instance_id)
        before = to_instance(row)
        if row.transition and procs.is_alive(row.busy_pid, row.busy_start_time):
            raise IncorrectInstanceState(
                f"instance {instance_id} is busy ({row.transition} in progress, pid {row.busy_pid})"
            )
        if row.state not in allowed:
            raise IncorrectInstanceState(
                f"cannot {transition} instance {instance_id} while it is {row.state}"
            )
        if state is not None and state != row.state:
            row.state = state
            row.state_changed_at = utcnow()
        row.transition = transition
        row.busy_pid, row.busy_start_time = me.pid, me.start_time
        return before


def update(instance_id: str, *, durable: bool = True, **values: Any) -> Instance:
    """Set fields (and end the transition unless ``transition`` is given); ``durable=False`` for what
    only matters while this boot of the host lasts (``kiln.db.engine.session``)."""
    from kiln.db.base import utcnow
    from kiln.db.engine import session
    from kiln.db.tables.instances import InstanceRecord

    values.setdefault("transition", None)
    if values["transition"] is None:
        values.setdefault("busy_pid", None)
        values.setdefault("busy_start_time", None)
    with session(durable=durable) as db:
        row = db.get(InstanceRecord, instance_id)
        if row is None:
            raise InvalidInstanceIDNotFound(instance_id)
        if "state" in values and values["state"] != row.state:
            row.state_changed_at = utcnow()
        for key, value in values.items():
            setattr(row, key, value)
        return to_instance(row)
