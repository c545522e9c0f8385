"""Instance lifecycle: launch, stop, start, reboot, terminate — from layer lists, never from AMIs.

An instance lives in ``KILN_HOME/instances/<id>/``: ``upper/`` (the root volume), ``work/``,
``merged/`` (the overlay, mounted in the host's mount namespace so the host reaches the instance's
files through it) and ``console.log``. EBS-backed instances keep ``upper/`` across stop and start;
instance-store-backed ones cannot be stopped. Terminate deletes the directory; the row stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kiln.ec2_errors import UnsupportedOperation
from kiln.errors import InvalidInput
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION, instances_dir
from kiln.model.ids import new_id
from kiln.runtime import cgroups, netns, overlay, records, sandbox, vm_process
from kiln.runtime.instance_types import DEFAULT_INSTANCE_TYPE, instance_type
from kiln.runtime.records import (
    PENDING,
    ROOT_DEVICE_TYPES,
    RUNNING,
    SHUTTING_DOWN,
    STOPPED,
    STOPPING,
    TERMINATED,
    Instance,
)
from kiln.runtime.teardown import NO_PROCESS, STOP_GRACE, Salvage, release, settle

USER_SHUTDOWN = ("Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown")


def _validate(
    root_device_type: str, network: str, host_local: bool, lower_dirs: Sequence[Path | str]
) -> list[Path]:
    if root_device_type not in ROOT_DEVICE_TYPES:
        raise InvalidInput(
            f"root device type must be one of {', '.join(ROOT_DEVICE_TYPES)}", location="RootDeviceType"
        )
    if network not in records.NETWORKS:
        raise InvalidInput(f"network must be one of {', '.join(records.NETWORKS)}", location="Network")
    if host_local and network == "none":
        raise InvalidInput("host-local addresses need a network (network host)", location="HostLocalNetwork")
    if not lower_dirs:
        raise InvalidInput("an instance needs at least one layer directory", location="LowerDirs")
    lowers = [Path(path).resolve() for path in lower_dirs]
    for path in lowers:
        if not path.is_dir():
            raise InvalidInput(f"layer directory {path} does not exist", location="LowerDirs")
    return lowers


def launch(
    lower_dirs: Sequence[Path | str],
    *,
    image_id: str | None = None,
    region: str = DEFAULT_REGION,
    instance_type_name: str = DEFAULT_INSTANCE_TYPE,
    root_device_type: str = "ebs",
    network: str = "none",
    host_local: bool = False,
    tags: Mapping[str, str] | None = None,
    owned: bool = False,
    account: str = DEFAULT_ACCOUNT,
    on_inserted: Callable[[Instance], None] | None = None,
) -> Instance:
    """Launch an instance of ``account`` over ``lower_dirs`` (base layer first) and return it running.

    ``network``: ``none`` (loopback only) or ``host`` (a namespace of its own with outbound access
    through the host; the host's loopback and link-local addresses only with ``host_local``: see
    :mod:`kiln.runtime.netns`). ``owned`` ties the instance to this process (build and test
    instances): if the process dies, :func:`kiln.runtime.recovery.recover` reports the instance so
    its owner's layer can clean up. ``on_inserted`` runs in the transaction that inserts the instance
    (its caller's records of the launch: one commit instead of one each).
    """
    from kiln.db.engine import session

    kind = instance_type(instance_type_name)
    lowers = _validate(root_device_type, network, host_local, lower_dirs)
    instance_id = new_id("i")
    base = instances_dir() / instance_id
    paths = {
        "dir": str(base),
        "upper": str(base / "upper"),
        "work": str(base / "work"),
        "merged": str(base / "merged"),
        "console": str(base / "console.log"),
        "cgroups": [],
        "host_local_network": host_local,
        "network_helper": None,
    }
    with session():
        instance = records.insert(
            id=instance_id,
            image_id=image_id,
            region=region,
            account_id=account,
            instance_type=kind.name,
            root_device_type=root_device_type,
            network=network,
            hostname=instance_id,
            vcpus=kind.vcpus,
            memory_mib=kind.memory_mib,
            lower_dirs=[str(p) for p in lowers],
            paths=paths,
            tags=dict(tags or {}),
            owned=owned,
        )
        if on_inserted is not None:
            on_inserted(instance)
    try:
        for name in ("upper", "work", "merged"):
            Path(paths[name]).mkdir(parents=True)
        Path(paths["console"]).touch()
        return _boot(instance)
    except BaseException as error:
        _fail(instance, f"launch failed: {error}", terminate=True)
        raise


def boot_launched(instance: Instance, prepare: Callable[[], None], insert: Callable[..., Instance]) -> Instance:
    """Make a VM instance's files (``prepare``) and boot it (``kiln.runtime.vm``), recording it with
    ``insert`` (given the fields to record beside the drafted ``instance``'s) once QEMU runs, as
    running; on failure it ends terminated (recorded then, if it was not) and the error is raised."""
    recorded = False

    def running(fields: dict[str, Any]) -> Instance:
        nonlocal recorded
        booted = insert(**fields, state=RUNNING, transition=None, busy_pid=None, busy_start_time=None)
        recorded = True
        return booted

    try:
        prepare()
        return vm_process.boot(instance, running, recorded=False)
    except BaseException as error:
        if not recorded:
            insert()  # shown terminated, as any launch that failed
        _fail(instance, f"launch failed: {error}", terminate=True)
        raise


def _boot(instance: Instance, **extra: object) -> Instance:
    """Mount the root volume, create the cgroups, start the sandbox and its network (a VM: start
    QEMU and its metadata endpoint); the instance ends running."""
    if instance.vm is not None:
        return vm_process.boot(instance, lambda fields: records.update(
            instance.id, state=RUNNING, state_reason_code=None, state_reason=None, **fields, **extra))
    # a build's instance is disposable: what lasts of it is the layer captured from it
    overlay.mount(instance.lower_dirs, instance.upper_dir, instance.work_dir, instance.merged_dir,
                  volatile=instance.owned)
    groups: list[Path] = []
    networked = instance.network != "none"
    link = netns.Link() if networked else None
    started: sandbox.Sandbox | None = None
    try:
        groups = cgroups.create(instance.id, cgroups.Limits(instance.vcpus, instance.memory_mib << 20))
        paths = {**instance.paths, "cgroups": [str(g) for g in groups], "network_helper": None}
        records.update(instance.id, paths=paths, transition=instance.transition)
        spec = sandbox.SandboxSpec(
            root=instance.merged_dir,
            hostname=instance.hostname,
            network=instance.network,
            console=instance.console_log,
            cgroups=groups,
            resolv_conf=netns.resolv_conf(instance.dir) if networked else None,
            withheld=netns.withheld_capabilities(instance.network, instance.host_local_network),
            hold_fds=(link.sandbox_fd,) if link else (),
        )
        started = sandbox.spawn(spec)
        if link is not None:
            link.sandbox_started()
            helper = netns.start(link, started.init.pid, instance.dir, host_local=instance.host_local_network)
            paths["network_helper"] = [helper.pid, helper.start_time]
    except BaseException:
        if started is not None:
            sandbox.kill(started.monitor)
        cgroups.remove(groups)
        overlay.unmount(instance.merged_dir)
        raise
    finally:
        if link is not None:
            link.close()
    return records.update(
        instance.id,
        paths=paths,
        state=RUNNING,
        state_reason_code=None,
        state_reason=None,
        init_pid=started.init.pid,
        init_start_time=started.init.start_time,
        monitor_pid=started.monitor.pid,
        monitor_start_time=started.monitor.start_time,
        **extra,
    )


def _fail(instance: Instance, reason: str, *, terminate: bool) -> Instance:
    """After a failed state change: release everything, end stopped (EBS) or terminated."""
    current = records.get(instance.id)
    terminate = terminate or current.root_device_type == "instance-store"
    try:
        release(current, grace=0, delete=terminate)
    finally:
        state = TERMINATED if terminate else STOPPED
        current = records.update(
            instance.id, state=state, state_reason_code="Server.InternalError", state_reason=reason[:500],
            **NO_PROCESS,
        )  # fmt: skip
    return current


def _current(instance_id: str) -> Instance:
    """The instance, first settled if a dead process left its state untrue (see recovery)."""
    current = records.get(instance_id)
    if records.needs_settling(current):
        settle(current)
        current = records.get(instance_id)
    return current


def _claim(instance_id: str, *, allowed: Sequence[str], state: str | None, transition: str) -> Instance:
    return records.claim(instance_id, allowed=allowed, state=state, transition=transition)


def get(instance_id: str) -> Instance:
    return records.get(instance_id)


def list_instances(
    *, states: Iterable[str] | None = None, image_id: str | None = None, account: str | None = None
) -> list[Instance]:
    return records.select(states=states, image_id=image_id, account=account)


def _refuse_instance_store(instance: Instance, verb: str) -> None:
    if instance.root_device_type == "instance-store":
        raise UnsupportedOperation(
            f"The instance '{instance.id}' does not have an 'ebs' root device type and cannot be {verb}.",
            hint="instance-store-backed instances can only be rebooted or terminated",
        )


def stop(instance_id: str, *, force: bool = False) -> Instance:
    """Stop an EBS-backed instance: its processes end, its root volume (upper dir) stays."""
    current = _current(instance_id)
    _refuse_instance_store(current, "stopped")
    if current.state == STOPPED:
        return current
    before = _claim(instance_id, allowed=[RUNNING], state=STOPPING, transition="stop")
    try:
        release(before, grace=0 if force else STOP_GRACE, delete=False)
    except BaseException:
        records.update(instance_id)  # end the transition; recovery finishes the stop
        raise
    return records.update(
        instance_id, state=STOPPED, state_reason_code=USER_SHUTDOWN[0], state_reason=USER_SHUTDOWN[1],
        **NO_PROCESS,
    )  # fmt: skip


def start(instance_id: str) -> Instance:
    """Start a stopped instance: mount its root volume again and start a new sandbox."""
    from kiln.db.base import utcnow

    current = _current(instance_id)
    _refuse_instance_store(current, "started")
    if current.state == RUNNING:
        return current
    before = _claim(instance_id, allowed=[STOPPED], state=PENDING, transition="start")
    before = records.get(instance_id)
    try:
        return _boot(before, launch_time=utcnow())
    except BaseException as error:
        _fail(before, f"start failed: {error}", terminate=False)
        raise


def reboot(instance_id: str) -> Instance:
    """Restart the instance's processes; the root volume (also instance store) is kept. A VM is reset
    in place (its QEMU process kept) when its QEMU answers."""
    _current(instance_id)
    before = _claim(instance_id, allowed=[RUNNING], state=None, transition="reboot")
    if before.vm is not None and vm_process.reset(before):
        return records.update(instance_id)
    try:
        release(before, delete=False)
        records.update(instance_id, transition="reboot", **NO_PROCESS)
        return _boot(records.get(instance_id))
    except BaseException as error:
        _fail(before, f"reboot failed: {error}", terminate=False)
        raise


def terminate(instance_id: str, *, force: bool = False, salvage: Salvage | None = None) -> Instance:
    """Terminate: processes end, the root volume and instance directory are deleted, the row stays.

    ``salvage`` gets the instance as it was before terminating, once its root volume is unmounted
    and before it is deleted (see :func:`kiln.runtime.teardown.release`).
    """
    current = _current(instance_id)
    if current.state == TERMINATED:
        return current
    allowed = [PENDING, RUNNING, STOPPING, STOPPED, SHUTTING_DOWN]
    before = _claim(instance_id, allowed=allowed, state=SHUTTING_DOWN, transition="terminate")
    try:
        release(before, grace=0 if force else STOP_GRACE, delete=True, salvage=salvage)
    except BaseException:
        records.update(instance_id)
        raise
    return records.update(
        instance_id, state=TERMINATED, state_reason_code=USER_SHUTDOWN[0], state_reason=USER_SHUTDOWN[1],
        **NO_PROCESS,
    )  # fmt: skip


def upper_dir(instance_id: str) -> Path:
    """The instance's root volume (overlay upper dir): what image capture reads."""
    return records.get(instance_id).upper_dir
