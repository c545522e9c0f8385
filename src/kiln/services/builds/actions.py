"""The build engine's step actions: a registry of workflow action name → handler.

A handler takes the running build (:class:`kiln.services.builds.workflow.Build`) and the step call
(its stage, declaration, resolved inputs and record) and returns the step's outputs, or
:class:`Skipped` with the reason. An action of Image Builder's catalogue without a handler here is
valid in a document and fails its step at run time, saying kiln has no implementation. Other
families add actions with :func:`register_action`. A container build (``imageType`` DOCKER) runs an
action's DOCKER handler when one is registered (:mod:`kiln.services.builds.container_actions`), else
the same handler as an AMI build (``WaitForAction``, ``RunCommand``…). The instance actions take the
VM path (:mod:`kiln.services.builds.vm_actions`) when the instance is a VM, which a build's instances
are when its infrastructure configuration's ``resourceTags`` say ``kiln:vm: "true"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kiln.errors import KilnError
from kiln.services.builds import records as images
from kiln.services.workflows.catalog import ACTIONS as CATALOG
from kiln.services.workflows.catalog import BUILD
from kiln.services.workflows.document import StepDecl

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Skipped:
    reason: str


@dataclass
class StepCall:
    stage: str  # BUILD | TEST | DISTRIBUTION
    step: StepDecl
    inputs: dict[str, Any]
    record: images.StepHandle


class StepFailed(KilnError):
    """A step's action failed (a STOP sent to a waiting step, a timeout, an input kiln cannot use)."""


# The build is typed loosely here: this module is below workflow.py, which imports it.
Handler = Callable[[Any, StepCall], "dict[str, Any] | Skipped"]
HANDLERS: dict[str, Handler] = {}
DOCKER_HANDLERS: dict[str, Handler] = {}  # a container build's own handlers of an action


def register_action(name: str, handler: Handler, image_type: str = "AMI") -> None:
    (DOCKER_HANDLERS if image_type == "DOCKER" else HANDLERS)[name] = handler


def action(name: str) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        register_action(name, handler)
        return handler

    return decorate


def handler_for(step: StepDecl, image_type: str = "AMI") -> Handler:
    found = (DOCKER_HANDLERS.get(step.action) if image_type == "DOCKER" else None) or HANDLERS.get(step.action)
    if found is None:
        raise StepFailed(f"step {step.name}: action {step.action} has no kiln implementation",
                         hint=f"kiln runs: {', '.join(sorted(HANDLERS))}")
    return found


def _instance(call: StepCall) -> str:
    instance = call.inputs.get("instanceId")
    if not isinstance(instance, str) or not instance:
        raise StepFailed(f"step {call.step.name}: instanceId must be an instance id, not {instance!r}")
    return instance


# --- instances ----------------------------------------------------------------------------------


@action("LaunchInstance")
def launch_instance(build: Any, call: StepCall) -> dict[str, Any]:
    from kiln.services.builds import steps

    plan = build.plan
    ami = call.inputs.get("imageIdOverride") or (plan.parent_ami if call.stage == BUILD else build.new_ami)
    if not ami:
        raise StepFailed(f"step {call.step.name}: no image to launch (the build made none yet); give imageIdOverride")
    types = call.inputs.get("instanceTypesOverride")
    if isinstance(types, list) and types:
        plan = replace(plan, instance_type=str(types[0]))
    purpose = "build" if call.stage == BUILD else "test"
    if plan.vm:  # resourceTags kiln:vm=true: a VM (kiln.services.builds.vm_actions)
        from kiln.services.builds import vm_actions

        instance = vm_actions.launch(build, plan, ami, purpose=purpose)
    else:
        instance = steps.launch(plan, ami, purpose=purpose, image_arn=build.arn)
    build.launched.append(instance)
    if call.stage == BUILD:
        build.build_instance = instance
        images.update(build.arn, build_instance_id=instance)
    else:
        build.test_instance = instance
        images.update(build.arn, test_instance_id=instance)
    return {"instanceId": instance}


@action("WaitForSSMAgent")
def wait_for_agent(build: Any, call: StepCall) -> dict[str, Any]:
    from kiln.services.builds import vm_actions

    if vm_actions.is_vm(_instance(call)):
        vm_actions.wait_ready(build, _instance(call))
    return {"status": "Success"}  # a sandbox runs commands as soon as it is launched


@action("TerminateInstance")
def terminate_instance(build: Any, call: StepCall) -> dict[str, Any]:
    from kiln.services.builds import steps

    instance = _instance(call)
    captured = build.captured.pop(instance, None)
    if captured is not None:
        steps.terminate_build(instance, captured, region=build.plan.region)
    else:
        steps.terminate(instance)
    build.forget_instance(instance)
    return {}


# --- inside the instance --------------------------------------------------------------------------


@action("ExecuteComponents")
def execute_components(build: Any, call: StepCall) -> dict[str, Any]:
    from kiln.services.builds import steps, vm_actions

    phases = ("build", "validate") if call.stage == BUILD else ("test",)
    call.record.log_path = str(build.log_dir / ("build" if call.stage == BUILD else "test"))
    if vm_actions.is_vm(_instance(call)):
        vm_actions.execute_components(build, _instance(call), phases, Path(call.record.log_path))
        return {}
    steps.execute_components(build.plan, _instance(call), phases, Path(call.record.log_path), build.arn,
                             build.check_cancel, progress=build.component_progress)
    return {}


@action("CollectImageMetadata")
def collect_image_metadata(build: Any, call: StepCall) -> dict[str, Any]:
    from kiln.services.builds import steps, vm_actions

    instance = _instance(call)
    os_version, packages = (vm_actions if vm_actions.is_vm(instance) else steps).inventory(instance)
    images.update(build.arn, os_version=os_version, packages=packages)
    return {"osVersion": os_version, "packageCount": len(packages)}


@action("SanitizeInstance")
def sanitize_instance(build: Any, call: StepCall) -> dict[str, Any]:
    from kiln.services.builds import steps, vm_actions

    instance = _instance(call)
    (vm_actions if vm_actions.is_vm(instance) else steps).sanitize(build.plan, instance)
    return {}


@action("RunCommand")
def run_command(build: Any, call: StepCall) -> dict[str, Any]:
    """``AWS-RunShellScript`` (its ``commands`` parameter) in the instance, as SSM would run it."""
    import uuid

    from kiln.runtime.exec import exec_in
    from kiln.services.builds import vm_actions

    document = call.inputs.get("documentName")
    if document != "AWS-RunShellScript":
        raise StepFailed(f"step {call.step.name}: kiln runs RunCommand with documentName AWS-RunShellScript only, "
                         f"not {document!r}")
    commands = (call.inputs.get("parameters") or {}).get("commands") or []
    commands = [commands] if isinstance(commands, str) else [str(command) for command in commands]
    timeout = call.step.timeout_seconds or CATALOG["RunCommand"].default_timeout
    if vm_actions.is_vm(_instance(call)):
        result = vm_actions.run_shell(_instance(call), "\n".join(commands), timeout=timeout)
    else:
        result = exec_in(_instance(call), ["/bin/sh", "-c", "\n".join(commands)], timeout=timeout)
    status = "Success" if result.exit_code == 0 else "Failed"
    outputs = {"runCommandId": str(uuid.uuid4()), "status": status,
               "output": result.stdout.splitlines()[-100:]}
    if result.exit_code != 0:
        raise StepFailed(f"step {call.step.name}: commands exited {result.exit_code}: "
                         f"{(result.stderr or result.stdout).strip()[-400:]}")
    return outputs


# --- images -----------------------------------------------------------------------------------------


def attach_watermarks(plan: Any, ami: str) -> None:
    """The recipe's amiWatermarks on the build's AMI, before any copy is made: every copy inherits them."""
    from kiln.store import api as store

    for name in plan.ami_watermarks:
        store.attach_watermark(ami, name, plan.region)


@action("CreateImage")
def create_image(build: Any, call: StepCall) -> dict[str, Any]:
    from kiln.services.builds import steps, vm_actions

    instance = _instance(call)
    if vm_actions.is_vm(instance):
        build.new_ami = vm_actions.create_ami(
            instance, name=build.ami_name(), description=build.plan.ami_description, tags=build.tags(),
            owner=build.account, volume_size=build.plan.volume_size,
        )
        images.update(build.arn, intermediate_ami_id=build.new_ami)
        attach_watermarks(build.plan, build.new_ami)
        return {"imageId": build.new_ami}
    captured = steps.create_ami(
        instance, name=build.ami_name(), description=build.plan.ami_description, tags=build.tags(),
        owner=build.account, volume_size=build.plan.volume_size,
    )
    build.captured[instance] = captured
    build.new_ami = captured.ami
    images.update(build.arn, intermediate_ami_id=build.new_ami)
    attach_watermarks(build.plan, build.new_ami)
    steps.write_sboms(build.new_ami, instance, region=build.plan.region)
    from kiln.services.builds.approval import mark_new_ami

    mark_new_ami(build.arn)  # approved before its AMI existed (an approval step ahead of CreateImage)
    return {"imageId": build.new_ami}


# --- distribution -------------------------------------------------------------------------------------


@action("DistributeImage")
def distribute_image(build: Any, call: StepCall) -> dict[str, Any]:
    return build.distribution.copy_all()


@action("ModifyImageAttributes")
def modify_image_attributes(build: Any, call: StepCall) -> dict[str, Any]:
    return build.distribution.share_all()


@action("ExportImage")
def export_image(build: Any, call: StepCall) -> dict[str, Any] | Skipped:
    if not build.distribution.exports():
        return Skipped("no s3ExportConfiguration")
    return build.distribution.export_all()


@action("ApplyImageConfigurations")
def apply_image_configurations(build: Any, call: StepCall) -> dict[str, Any]:
    """S3 exports now; SSM parameters and launch templates are written with the image becoming
    AVAILABLE (one transaction), whatever workflow ran."""
    return build.distribution.export_all() if build.distribution.exports() else {}


# --- waiting ------------------------------------------------------------------------------------------


@action("WaitForAction")
def wait_for_action(build: Any, call: StepCall) -> dict[str, Any]:
    """WAITING until SendWorkflowStepAction (RESUME completes, STOP fails the step) or the timeout;
    the wait polls the database with reads only, so it holds no write lock."""
    from kiln.services.workflows import executions

    timeout = call.step.timeout_seconds or CATALOG["WaitForAction"].default_timeout
    executions.set_waiting(call.record.step_id)
    build.progress(f"  {call.step.name}: waiting for an action (kiln workflow send-action "
                   f"{call.record.step_id} {build.arn} RESUME|STOP)")
    deadline = time.monotonic() + timeout
    while True:
        build.check_cancel()
        sent, reason = executions.action_for(call.record.step_id)
        if sent in ("RESUME", "STOP"):
            from kiln.services.builds.approval import answered

            answered(build.arn, call.record.step_id, sent, reason)
        if sent == "RESUME":
            return {"action": "RESUME", **({"reason": reason} if reason else {})}
        if sent == "STOP":
            call.record.outputs = {"action": "STOP", **({"reason": reason} if reason else {})}
            raise StepFailed(f"step {call.step.name} stopped by SendWorkflowStepAction"
                             + (f": {reason}" if reason else ""))
        if time.monotonic() >= deadline:
            raise StepFailed(f"step {call.step.name} timed out after {timeout} seconds waiting for an action")
        time.sleep(POLL_SECONDS)
