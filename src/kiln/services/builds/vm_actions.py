"""The VM path of the build's instance actions, for an infrastructure configuration whose build and
test instances are VMs (``resourceTags`` ``kiln:vm: "true"``, :mod:`kiln.services.configurations.vm_builds`).

The handlers of :mod:`kiln.services.builds.actions` keep their bookkeeping and call these instead of
:mod:`kiln.services.builds.steps` when the instance is a VM:

- LaunchInstance: ``RunInstances`` of a VM from the AMI's bootable disk, then waiting (within the
  step's time, cancellable) until the guest takes an SSH login and cloud-init is done; the build
  instance gets the working directory and its ``perform_cleanup`` marker as in a sandbox.
- ExecuteComponents: each component's phases run by kiln's AWSTOE engine *inside the guest*
  (:mod:`kiln.runtime.vm_guest_exec`), its progress lines streamed into the build's log as they come,
  its ``TOE_…`` log folder copied into the build's log directory; a failed step fails the step with
  its message, a step out of time or a cancelled image stops it as in a sandbox. A step that asks
  for a reboot (``Reboot``, exit code 194) gets a real one (the guest is reset) and the document
  resumes after it, as AWSTOE's does.
- CollectImageMetadata: the guest's package databases and os-release, copied out and read as a
  sandbox's are. SanitizeInstance: the same sections, run as a script in the guest.
- CreateImage: the VM is stopped (the power button, as EC2's CreateImage reboots) and what its root
  volume changed becomes one more layer over its AMI's (:mod:`kiln.runtime.vm_capture`).
- TerminateInstance, and every failure and recovery path, terminate the VM as any instance.
"""

from __future__ import annotations

import contextlib
import shlex
import tempfile
import time
from pathlib import Path
from typing import Any

from kiln.services.builds.plan import BuildPlan

LAUNCH_WAIT_DEFAULT = 1800.0  # seconds to wait for a login when no step deadline is known


def is_vm(instance_id: str) -> bool:
    from kiln.runtime import records

    return records.get(instance_id).vm is not None


def _remaining(build: Any, default: float = LAUNCH_WAIT_DEFAULT) -> float:
    deadline = getattr(build, "step_deadline", None)
    return max(deadline[0] - time.monotonic(), 1.0) if deadline else default


def launch(build: Any, plan: BuildPlan, ami: str, *, purpose: str) -> str:
    """A VM instance of ``ami`` ready for work (SSH login, cloud-init done); terminated again when it
    does not get there."""
    from kiln.runtime import vm_guest_exec
    from kiln.services.ec2.instances import VmOptions, run_instance

    instance = run_instance(
        ami, region=plan.region, instance_type=plan.instance_type, owned=True, account=plan.account,
        tags={**plan.resource_tags, "kiln:ImageArn": build.arn, "kiln:Purpose": purpose},
        host_local=plan.host_local_network,
        # the guest's S3 steps go through the host's relay with the policy a sandbox build's get
        vm=VmOptions(volume_size=plan.volume_size if purpose == "build" else None, network=plan.network,
                     s3_policy=plan.network_policy()),
    )
    try:
        build.progress(f"    {instance.id}: VM booting ({(instance.vm or {}).get('accel', '?')})")
        vm_guest_exec.wait_ready(instance.id, check=build.check_cancel, timeout=_remaining(build))
        if purpose == "build":
            from kiln.services.builds.steps import PERFORM_CLEANUP

            working = shlex.quote(plan.working_directory)
            done = vm_guest_exec.run_script(instance.id, f"mkdir -p {working} && touch {working}/{PERFORM_CLEANUP}",
                                            timeout=120)
            if done.exit_code != 0:
                raise vm_guest_exec.GuestError(f"could not make the working directory {plan.working_directory} "
                                               f"in {instance.id}: {done.stderr.strip()[-300:]}")
    except BaseException:
        from kiln.services.builds.steps import terminate

        with contextlib.suppress(Exception):
            terminate(instance.id)
        raise
    return instance.id


def wait_ready(build: Any, instance_id: str) -> None:
    from kiln.runtime import vm_guest_exec

    vm_guest_exec.wait_ready(instance_id, check=build.check_cancel, timeout=_remaining(build))


def execute_components(build: Any, instance_id: str, phases: tuple[str, ...], log_dir: Path) -> None:
    """Every component's ``phases`` in recipe order, in the guest (see the module docstring)."""
    from kiln.runtime import vm_guest_exec
    from kiln.services.builds.steps import ComponentsFailed, has_phase

    plan: BuildPlan = build.plan
    log_dir.mkdir(parents=True, exist_ok=True)
    todo = [(index, component) for index, component in enumerate(plan.components)
            if any(has_phase(component.document, phase) for phase in phases)]
    if not todo:
        return
    vm_guest_exec.install_runner(instance_id)
    try:
        for index, component in todo:
            build.check_cancel()
            run = vm_guest_exec.run_document(
                instance_id, component.document, name=f"{component.name}-{component.version}", phases=phases,
                parameters=component.parameters, log_dir=log_dir / f"{index:02d}-{component.name}",
                working_directory=plan.working_directory, timeout=_remaining(build),
                progress=build.component_progress, check=build.check_cancel,
            )
            if run.timed_out:
                build.check_cancel()  # past the step's deadline: StepTimedOut, as in a sandbox
            if not run.ok:
                raise ComponentsFailed(
                    f"component {component.arn} failed in phase {'/'.join(phases)}: {run.message}",
                    hint=f"step logs are in {log_dir}",
                )
    finally:
        with contextlib.suppress(Exception):
            vm_guest_exec.remove_runner(instance_id)


def inventory(instance_id: str) -> tuple[str, list[dict[str, str]]]:
    """The OS and packages, read from the guest's package databases copied out of it."""
    from kiln.runtime import vm_guest_exec
    from kiln.services.builds.steps import inventory_of
    from kiln.store.package_db import OS_RELEASE, PATHS_TRIED, RPM_SQLITE

    paths = [*OS_RELEASE, *PATHS_TRIED, *(f"{path}-wal" for path in RPM_SQLITE)]
    with tempfile.TemporaryDirectory(prefix="kiln-vm-inventory-") as scratch:
        root = vm_guest_exec.fetch_paths(instance_id, paths, Path(scratch) / "root")
        return inventory_of([root], instance_id)


def sanitize(plan: BuildPlan, instance_id: str) -> list[str]:
    """Image Builder's SanitizeInstance in the guest: only while ``<workingDirectory>/perform_cleanup``
    exists; a section is skipped when its skip marker is there. Returns the paths removed."""
    from kiln.runtime import vm_guest_exec
    from kiln.services.builds.steps import PERFORM_CLEANUP, SANITIZE_SECTIONS

    working = shlex.quote(plan.working_directory)
    lines = [f"cd {working} 2>/dev/null && [ -e {PERFORM_CLEANUP} ] || exit 0"]
    for skip_marker, paths in SANITIZE_SECTIONS:
        quoted = [shlex.quote(path) for path in paths]
        removals = " ".join(f"if [ -e {p} ] || [ -L {p} ]; then rm -rf {p} && echo {p}; fi;" for p in quoted)
        lines.append(f"if [ ! -e {shlex.quote(skip_marker)} ]; then {removals} fi")
    lines.append(f"rm -f {working}/{PERFORM_CLEANUP}")
    done = vm_guest_exec.run_script(instance_id, "\n".join(lines), timeout=600)
    if done.exit_code != 0:
        raise vm_guest_exec.GuestError(f"sanitizing {instance_id} failed (exit {done.exit_code}): "
                                       f"{done.stderr.strip()[-300:]}")
    return done.stdout.split()


def create_ami(instance_id: str, *, name: str, description: str | None, tags: dict[str, str], owner: str,
               volume_size: int | None) -> str:
    """Stop the VM and capture what its root volume changed as the new AMI (one more layer)."""
    from kiln.errors import KilnError
    from kiln.runtime import instances
    from kiln.runtime.vm_capture import capture_upper, scratch_dir
    from kiln.store import api as store

    stopped = instances.stop(instance_id)
    if stopped.image_id is None or stopped.vm is None:
        raise KilnError(f"build instance {instance_id} is not a VM launched from an image")
    volume = Path(stopped.vm["root"])
    # in the instance's directory, named after this process: recovery removes what a kill leaves here
    with scratch_dir(stopped.dir) as scratch:
        upper = scratch / "upper"
        upper.mkdir()
        capture_upper(volume, store.layer_dirs(stopped.image_id, stopped.region), upper)
        return str(store.create_image_from_upper(
            stopped.image_id, upper, region=stopped.region, name=name, description=description,
            tags=dict(tags), owner=owner, volume_size=volume_size,
        ))


def run_shell(instance_id: str, script: str, *, timeout: float) -> Any:
    """RunCommand's ``AWS-RunShellScript`` in the guest."""
    from kiln.runtime.vm_ssh import exec_vm

    return exec_vm(instance_id, ["/bin/sh", "-c", script], timeout=timeout)
