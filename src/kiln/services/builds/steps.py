"""The actions of the build workflow, each over the runtime, the store and the document engine."""

from __future__ import annotations

import contextlib
import functools
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kiln.errors import KilnError
from kiln.home import DEFAULT_ACCOUNT
from kiln.services.builds.plan import BuildPlan

if TYPE_CHECKING:
    from kiln.store.fidelity import CaptureRecord

PERFORM_CLEANUP = "perform_cleanup"

# Image Builder's Linux sanitize script, section by section: (skip marker, paths removed).
SANITIZE_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("skip_cleanup_cloudinit_files", ("/var/lib/cloud", "/var/log/cloud-init.log",
                                      "/var/log/cloud-init-output.log", "/etc/sudoers.d/90-cloud-init-users")),
    ("skip_cleanup_instance_files", ("/etc/hostname", "/var/lib/dbus/machine-id")),
    ("skip_cleanup_ssh_files", ("/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_rsa_key.pub",
                                "/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_ecdsa_key.pub",
                                "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub",
                                "/root/.ssh/authorized_keys")),
    ("skip_cleanup_instance_log_files", ("/var/log/audit/audit.log", "/var/log/boot.log", "/var/log/dmesg",
                                         "/var/log/cron")),
)


class ComponentsFailed(KilnError):
    """A component step failed inside the build or test instance."""


def launch(plan: BuildPlan, ami: str, *, purpose: str, image_arn: str) -> str:
    from kiln.runtime.executor import InstanceExecutor
    from kiln.services.ec2.instances import run_instance

    instance = run_instance(
        ami,
        region=plan.region,
        instance_type=plan.instance_type,
        network=plan.network,
        host_local=plan.host_local_network,
        tags={**plan.resource_tags, "kiln:ImageArn": image_arn, "kiln:Purpose": purpose},
        owned=True,
        account=plan.account,
    )
    working = InstanceExecutor(instance.id).host_path(plan.working_directory)
    working.mkdir(parents=True, exist_ok=True)
    if purpose == "build":
        (working / PERFORM_CLEANUP).touch()
    return instance.id


def has_phase(document: str, phase: str) -> bool:
    return phase in _phase_names(document)


@functools.lru_cache(maxsize=64)
def _phase_names(document: str) -> frozenset[str]:
    """The phase names of a component document (a build asks for each component two or three times;
    libyaml's loader when installed: the pure-Python one took 20 ms a document)."""
    parsed = yaml.load(document, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    if not isinstance(parsed, dict):
        return frozenset()
    return frozenset(str(entry.get("name")) for entry in parsed.get("phases") or [] if isinstance(entry, dict))


def execute_components(
    plan: BuildPlan,
    instance_id: str,
    phases: tuple[str, ...],
    log_dir: Path,
    image_arn: str,
    check_cancel: Callable[[], None],
    *,
    progress: Callable[[str], None] = lambda line: None,
) -> None:
    """Run every component's ``phases`` in recipe order inside the instance (the AWSTOE engine); the
    network actions obey the infrastructure configuration's network policy."""
    from kiln.runtime.executor import InstanceExecutor

    executor = InstanceExecutor(instance_id, network=plan.network_policy())
    log_dir.mkdir(parents=True, exist_ok=True)
    for index, component in enumerate(plan.components):
        if not any(has_phase(component.document, phase) for phase in phases):
            continue
        check_cancel()
        ok, message = run_document(
            executor,
            component.document,
            name=f"{component.name}-{component.version}",
            phases=phases,
            parameters=component.parameters,
            log_dir=log_dir / f"{index:02d}-{component.name}",
            working_directory=plan.working_directory,
            progress=progress,
        )
        if not ok:
            raise ComponentsFailed(
                f"component {component.arn} failed in phase {'/'.join(phases)}: {message}",
                hint=f"step logs are in {log_dir}",
            )


def run_document(
    executor: Any,
    document: str,
    *,
    name: str,
    phases: tuple[str, ...],
    parameters: dict[str, str],
    log_dir: Path,
    working_directory: str,
    progress: Callable[[str], None] = lambda line: None,
) -> tuple[bool, str]:
    """Run one AWSTOE document through the engine; returns (succeeded, failure message).

    The run leaves awstoe's log folder (``TOE_…`` with console.log and detailedoutput.json) in
    ``log_dir``.
    """
    from kiln.documents.model import DocumentInvalid
    from kiln.documents.run import document_from_text, run_documents

    try:
        parsed = document_from_text(document, name)
    except DocumentInvalid as invalid:
        return False, "; ".join(str(issue) for issue in invalid.issues) or "document does not parse"
    execution, _ = run_documents(
        [parsed], executor=executor, log_directory=log_dir, execution_id=name, phases=phases,
        parameters=parameters, progress=progress, cwd=working_directory,
    )
    if execution.status == "success":
        return True, ""
    return False, execution.failure_message or "a step failed"


def inventory(instance_id: str) -> tuple[str, list[dict[str, str]]]:
    """The OS name and version, and the installed packages (``InstalledPackage.as_json()`` records),
    read from the package databases in the instance's layers and root volume: nothing runs inside it.
    An image without a package database (a busybox tree) has an empty list."""
    from kiln.runtime import records

    instance = records.get(instance_id)
    return inventory_of([*instance.lower_dirs, instance.upper_dir], instance_id)


def inventory_of(layers: list[Path], label: str) -> tuple[str, list[dict[str, str]]]:
    """:func:`inventory` of a root file system given as overlay layer dirs (bottom first)."""
    from kiln.store.layer_view import LayerView
    from kiln.store.package_db import NoPackageDatabase, read_inventory, read_os_release

    try:
        found = read_inventory(layers, label)
        release, packages = found.os, [package.as_json() for package in found.packages]
    except NoPackageDatabase:
        release, packages = read_os_release(LayerView(layers))[0], []
    os_version = " ".join(part for part in (release.id.capitalize() if release.id else "Linux",
                                            release.version_id) if part)
    return os_version, packages


def sanitize(plan: BuildPlan, instance_id: str) -> list[str]:
    """Image Builder's SanitizeInstance: runs only while ``<workingDirectory>/perform_cleanup`` exists."""
    from kiln.runtime.executor import InstanceExecutor

    executor = InstanceExecutor(instance_id)
    working = executor.host_path(plan.working_directory)
    marker = working / PERFORM_CLEANUP
    if not marker.exists():
        return []
    removed = []
    for skip_marker, paths in SANITIZE_SECTIONS:
        if (working / skip_marker).exists():
            continue
        for path in paths:
            target = executor.host_path(path)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
                removed.append(path)
            elif target.exists() or target.is_symlink():
                target.unlink()
                removed.append(path)
    marker.unlink()
    return removed


@dataclass(frozen=True)
class CapturedVolume:
    """The build instance's root volume as CreateOutputAMI captured it into ``ami``."""

    ami: str
    record: CaptureRecord
    stopped_at: datetime  # the instance's state_changed_at then: a later start/stop changes it


def create_ami(
    instance_id: str, *, name: str, description: str | None, tags: dict[str, str], owner: str = DEFAULT_ACCOUNT,
    volume_size: int | None = None,
) -> CapturedVolume:
    """Stop the build instance and capture its root volume as the new AMI (EC2 CreateImage of a
    stopped instance), noting what lets the volume become the new layer's unpacked dir later."""
    from kiln.runtime import instances
    from kiln.store import api as store

    stopped = instances.stop(instance_id)
    if stopped.image_id is None:
        raise KilnError(f"build instance {instance_id} was not launched from an image")
    record = store.CaptureRecord()
    ami = store.create_image_from_upper(
        stopped.image_id, stopped.upper_dir, region=stopped.region, name=name,
        description=description, tags=dict(tags), record=record, owner=owner, volume_size=volume_size,
    )
    return CapturedVolume(ami, record, stopped.state_changed_at)


def terminate_build(instance_id: str, captured: CapturedVolume | None, *, region: str) -> None:
    """Terminate the build instance. Its root volume, which the new AMI's top layer was captured
    from, is not deleted but becomes that layer's unpacked dir, so the test instance (and any
    later one) launches without unpacking the layer — unless the instance ran again since."""
    from kiln.runtime import instances
    from kiln.runtime.records import STOPPED, Instance
    from kiln.services.ec2.instances import PIN_PREFIX
    from kiln.store import api as store

    def salvage(before: Instance) -> None:
        if captured is None or before.state != STOPPED or before.state_changed_at != captured.stopped_at:
            return
        with contextlib.suppress(OSError, KilnError):  # only saves time: the layer unpacks on launch
            store.adopt_top_layer(captured.ami, before.upper_dir, captured.record, region=region)

    instances.terminate(instance_id, force=True, salvage=salvage)
    store.unpin_holder(PIN_PREFIX + instance_id)  # as services.ec2.instances.terminate_instance


def write_sboms(ami: str, instance_id: str, *, region: str) -> list[str]:
    """The new AMI's SBOMs (SPDX and CycloneDX, its OCI referrers), read from the stopped build
    instance's layers and root volume, what the AMI's top layer was just captured from: nothing is
    unpacked. Returns the artifact types written (none for an image without a package database)."""
    from kiln.runtime import records
    from kiln.services.inventory.artifacts import write_sboms as write

    instance = records.get(instance_id)
    return write(ami, region, [*instance.lower_dirs, instance.upper_dir])


def copy_ami(plan: BuildPlan, source_ami: str, *, name: str, tags: dict[str, str]) -> str:
    """A new AMI with the same root volume as ``source_ami`` (EC2 CopyImage in-region: its snapshot
    lists the very same blobs)."""
    from kiln.store import api as store

    return store.copy_image(
        source_ami, source_region=plan.region, region=plan.region, name=name,
        description=plan.ami_description or "", tags=tags, owner=plan.account,
    )


def terminate(instance_id: str) -> None:
    from kiln.services.ec2.instances import terminate_instance

    terminate_instance(instance_id)


def discard_ami(ami: str, *, region: str) -> None:
    """Remove an AMI the failed build made, with its snapshots (nothing is left behind)."""
    from kiln.store import api as store

    with contextlib.suppress(Exception):
        store.disable_deregistration_protection(ami, region=region)
    store.deregister_image(ami, region=region, delete_snapshots=True)
