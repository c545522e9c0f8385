"""The container handlers of workflow actions (``imageType`` DOCKER), run by the build engine for a
container build (:class:`kiln.services.builds.container.ContainerBuild`): its instances are sandboxes
over OCI layers, its image one captured layer, its distribution a ref in the region's OCI layout.

Actions without a container handler run as for an AMI (``WaitForAction``, a plain ``RunCommand``…);
those that only mean something for an AMI fail their step saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiln.services.builds import records as images
from kiln.services.builds.actions import StepCall, StepFailed, register_action, run_command
from kiln.services.workflows.catalog import BUILD

PIN_PREFIX = "container-build:"
AMI_ONLY = ("CollectImageMetadata", "SanitizeInstance", "RunSysPrep", "ModifyImageAttributes", "ExportImage",
            "ApplyImageConfigurations", "CreateImageFromIso", "RegisterImage", "BootstrapInstanceForContainer")


def host_path(instance_id: str, path: str) -> Path:
    from kiln.runtime.executor import InstanceExecutor

    return InstanceExecutor(instance_id).host_path(path)


def store_pin(region: str, digests: list[str], arn: str) -> None:
    from kiln.store import api as store

    store.pin(region, digests, PIN_PREFIX + arn)


def _instance(build: Any, call: StepCall) -> str:
    instance = call.inputs.get("instanceId")
    if not isinstance(instance, str) or not instance:
        raise StepFailed(f"step {call.step.name}: instanceId must be a build container id, not {instance!r}")
    return instance


def launch(build: Any, call: StepCall) -> dict[str, Any]:
    """A sandbox over the parent's layers (BUILD) or the new image's (TEST)."""
    from kiln.runtime import instances
    from kiln.store import containers

    plan = build.plan
    layers = list(plan.parent.layers)
    if call.stage != BUILD:
        if build.layer is None:
            raise StepFailed(f"step {call.step.name}: no container image to launch (the build made none yet)")
        layers.append(build.layer)
    purpose = "build" if call.stage == BUILD else "test"
    instance = instances.launch(
        containers.layer_dirs(layers, build.region), region=build.region, instance_type_name=plan.instance_type,
        network=plan.network, host_local=plan.host_local, owned=True, account=build.account,
        tags={"kiln:ImageArn": build.arn, "kiln:Purpose": purpose},
    ).id
    build.launched.append(instance)
    if call.stage == BUILD:
        build.build_instance = instance
        images.update(build.arn, build_instance_id=instance)
    else:
        build.test_instance = instance
        images.update(build.arn, test_instance_id=instance)
    return {"instanceId": instance}


def execute_components(build: Any, call: StepCall) -> dict[str, Any]:
    """The components' build and validate phases (BUILD, where the template's placeholder stands) or
    test phases."""
    from kiln.documents.network import NetworkPolicy
    from kiln.runtime.executor import InstanceExecutor
    from kiln.services.builds.steps import ComponentsFailed, has_phase, run_document

    instance, plan = _instance(build, call), build.plan
    phases = ("build", "validate") if call.stage == BUILD else ("test",)
    if call.stage == BUILD:
        build.advance(next(item.line for item in build.program if item.keyword == "COMPONENTS"), instance)
    log_dir = build.log_dir / ("build" if call.stage == BUILD else "test")
    call.record.log_path = str(log_dir)
    policy = NetworkPolicy(reachable=plan.network != "none", host_local=plan.host_local, aws_profile=plan.aws_profile)
    executor = InstanceExecutor(instance, network=policy)
    executor.host_path(plan.working_directory).mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    for index, component in enumerate(plan.components):
        if not any(has_phase(component.document, phase) for phase in phases):
            continue
        build.check_cancel()
        ok, message = run_document(
            executor, component.document, name=f"{component.name}-{component.version}", phases=phases,
            parameters=component.parameters, log_dir=log_dir / f"{index:02d}-{component.name}",
            working_directory=plan.working_directory, progress=build.component_progress,
        )
        if not ok:
            raise ComponentsFailed(f"component {component.arn} failed in phase {'/'.join(phases)}: {message}",
                                   hint=f"step logs are in {log_dir}")
    return {}


def run_line(build: Any, call: StepCall) -> dict[str, Any]:
    """A RUN of the Dockerfile template (``dockerfileLine``) with the image config built up so far; any
    other RunCommand runs as for an AMI."""
    from kiln.runtime.exec import exec_in
    from kiln.services.container_recipes import dockerfile

    line = call.inputs.get("dockerfileLine")
    if line is None:
        return run_command(build, call)
    instance = call.inputs.get("instanceId") or build.build_instance
    if not instance:
        raise StepFailed(f"step {call.step.name}: no build container to run line {line} in")
    build.advance(int(line), instance)
    item = build.instruction(int(line))
    argv = dockerfile.command(item, build.where)
    log = build.log_dir / f"build-line-{line}.log"
    call.record.log_path = str(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        def sink(text: str) -> None:
            out.write(text if text.endswith("\n") else text + "\n")
            build.progress(f"    {text.rstrip()}")

        result = exec_in(instance, argv, env=build.config.run_env(), cwd=build.config.working_dir or "/",
                         on_stdout=sink, on_stderr=sink)
    if result.exit_code != 0:
        raise StepFailed(f"{build.where}:{line}: RUN {item.argument} exited with code {result.exit_code}",
                         hint=f"its output is in {log}")
    return {"status": "Success"}


def create_image(build: Any, call: StepCall) -> dict[str, Any]:
    """The build container's root volume as one layer (mtimes clamped to the recipe's creation time) and
    the image config the template built up."""
    from kiln.runtime import instances
    from kiln.store import containers

    instance, plan = _instance(build, call), build.plan
    build.advance(None, instance)
    stopped = instances.stop(instance)
    layer = containers.capture_layer(stopped.upper_dir, build.region, plan.epoch)
    store_pin(build.region, [layer.digest], build.arn)
    created = created_at(plan.epoch)
    build.history.append({"created": created, "created_by": f"kiln: {plan.recipe_arn}"})
    build.layer = layer
    build.image_config = {
        "architecture": plan.parent.architecture, "os": "linux", "created": created, "config": build.config.as_oci(),
        "rootfs": {"type": "layers", "diff_ids": [parent.diff_id for parent in plan.parent.layers] + [layer.diff_id]},
        "history": build.history,
    }
    return {"layer": layer.digest, "diffId": layer.diff_id}


def terminate(build: Any, call: StepCall) -> dict[str, Any]:
    instance = _instance(build, call)
    build.terminate_instance(instance)
    build.forget_instance(instance)
    return {}


def distribute(build: Any, call: StepCall) -> dict[str, Any]:
    """Name the image in the region's layout; its parent's zstd layers (an AMI's) are written gzip
    compressed for it, which every image tool reads (skopeo's docker-archive refuses zstd)."""
    from kiln.store import containers

    if build.layer is None or build.image_config is None:
        raise StepFailed(f"step {call.step.name}: the build made no container image to distribute")
    ref = f"{build.plan.repository}:{build.row.version}-{build.row.build_number}"
    build.ref = ref
    portable = containers.portable_layers([*build.plan.parent.layers, build.layer], build.region)
    store_pin(build.region, [layer.digest for layer in portable], build.arn)
    manifest = containers.write_image(ref, portable, build.image_config, build.region)
    uri = f"oci:{containers.layout_dir(build.region)}:{ref}"
    build.outputs = [{"region": build.region, "imageUris": [uri]}]
    return {"ref": ref, "manifestDigest": manifest.digest, "imageUri": uri}


def ami_only(build: Any, call: StepCall) -> dict[str, Any]:
    raise StepFailed(f"step {call.step.name}: {call.step.action} is for AMI builds; a container build has no "
                     f"instance image to apply it to")


def created_at(epoch: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


for _name, _handler in (("LaunchInstance", launch), ("ExecuteComponents", execute_components),
                        ("RunCommand", run_line), ("CreateImage", create_image), ("TerminateInstance", terminate),
                        ("DistributeImage", distribute), ("DistributeContainerImage", distribute),
                        *((name, ami_only) for name in AMI_ONLY)):
    register_action(_name, _handler, image_type="DOCKER")
