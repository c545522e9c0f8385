"""The build of a container image from a container recipe, in kiln's sandboxes.

build:        LaunchBuildContainer (a sandbox over the parent's layers) → the Dockerfile template's
              instructions in order: each RUN a ``RunCommand`` step, the components placeholder the
              components' build and validate phases (ApplyBuildComponents); ENV, ARG, WORKDIR, USER,
              LABEL, CMD, ENTRYPOINT, EXPOSE build up the image config → CreateContainerImage (the
              sandbox's root volume captured as one layer, mtimes clamped to the recipe's creation
              time, so the same recipe builds the same bytes) → TerminateBuildContainer
test:         LaunchTestContainer (over the new image's layers) → ApplyTestComponents (test phases)
              → TerminateTestContainer
distribution: DistributeContainerImage: the manifest named ``<repositoryName>:<version>-<build>`` in
              the region's OCI layout, with the image becoming AVAILABLE

Steps are recorded with ``records.step`` like the AMI workflow's. On failure or cancellation nothing is
left: sandboxes terminated (the build one kept with ``terminateInstanceOnFailure: false``), no ref.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiln.errors import KilnError
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION, logs_dir
from kiln.services.builds import records as images
from kiln.services.builds.container_plan import ContainerPlan, plan_container

Progress = Callable[[str], None]
PIN_PREFIX = "container-build:"


class ContainerBuildFailed(KilnError):
    """A step of a container build failed; the image is FAILED with this reason."""


def is_container_image(recipe_arn: str | None) -> bool:
    """Whether an image's recipe is a container recipe (its build is this module's)."""
    return bool(recipe_arn) and ":container-recipe/" in f":{recipe_arn}"


def _created(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ContainerBuild:
    """One container image build (its ImageBuild row records a container recipe ARN)."""

    def __init__(self, arn: str, *, progress: Progress) -> None:
        self.arn = arn
        self.progress = progress
        self.row = images.get_row(arn)
        self.region = arn.split(":")[3]
        self.account = images.account_of(arn)
        self.log_dir = logs_dir() / "images" / arn.split(":image/", 1)[1].replace("/", "_")
        self.plan: ContainerPlan | None = None
        self.build_instance: str | None = None
        self.test_instance: str | None = None
        self.ref: str | None = None

    def _check_cancel(self) -> None:
        if images.cancel_requested(self.arn):
            raise ContainerBuildFailed("cancelled by CancelImageCreation")

    def _status(self, status: str) -> None:
        self._check_cancel()
        images.set_status(self.arn, status)
        self.progress(f"{self.arn}: {status}")

    def _step(self, workflow: str, name: str, action: str):  # type: ignore[no-untyped-def]
        self._check_cancel()
        self.progress(f"  {workflow}/{name} ({action})")
        return images.step(self.arn, workflow, name, action)

    def run(self) -> dict[str, Any]:
        from kiln.store import api as store

        self.log_dir.mkdir(parents=True, exist_ok=True)
        images.update(self.arn, log_directory=str(self.log_dir))
        try:
            self.plan = plan_container(self.row.recipe_arn, self.row.infrastructure_arn,
                                       region=self.region, account=self.account)
            # as the AMI build records them (pipelines' dependency checks compare parent_ami and components)
            images.update(self.arn, resolved_inputs={
                "parent_source": self.plan.parent.source, "parent_ami": self.plan.parent.ami, "region": self.region,
                "components": [{"arn": c.arn, "name": c.name, "version": c.version} for c in self.plan.components],
            })
            digests = [layer.digest for layer in self.plan.parent.layers]
            store.pin(self.region, digests, PIN_PREFIX + self.arn)
            self._status("BUILDING")
            layer, config = self._build()
            layers = [*self.plan.parent.layers, layer]
            if self.row.tests_enabled:
                self._status("TESTING")
                self._test(layers)
            self._status("DISTRIBUTING")
            self._distribute(layers, config)
        except BaseException as error:
            cancelled = images.cancel_requested(self.arn)
            reason = str(error) if isinstance(error, KilnError) else f"{type(error).__name__}: {error}"
            self._fail("CANCELLED" if cancelled else "FAILED", reason)
            raise ContainerBuildFailed(reason, hint=f"kiln image logs {self.arn}") from error
        finally:
            store.unpin_holder(PIN_PREFIX + self.arn)
        return images.get_image(self.arn)

    # -- build -------------------------------------------------------------------------------------
    def _launch(self, lower_dirs: list[Path], purpose: str) -> str:
        from kiln.runtime import instances

        assert self.plan is not None
        instance = instances.launch(
            lower_dirs, region=self.region, instance_type_name=self.plan.instance_type, network=self.plan.network,
            host_local=self.plan.host_local, owned=True, account=self.account,
            tags={"kiln:ImageArn": self.arn, "kiln:Purpose": purpose},
        )
        return instance.id

    def _build(self) -> tuple[Any, dict[str, Any]]:
        from kiln.runtime import instances
        from kiln.services.container_recipes import dockerfile
        from kiln.store import containers

        assert self.plan is not None
        plan = self.plan
        where = f"{plan.recipe_arn}: dockerfileTemplateData"
        program = dockerfile.parse(plan.template, where)
        config = dockerfile.ImageConfig.of(plan.parent.config)
        with self._step("build", "LaunchBuildContainer", "LaunchInstance") as step:
            self.build_instance = self._launch(containers.layer_dirs(plan.parent.layers, self.region), "build")
            images.update(self.arn, build_instance_id=self.build_instance)
            step.outputs = {"instanceId": self.build_instance}
        history = list(plan.parent.history)
        for item in program:
            if item.keyword == "RUN":
                with self._step("build", f"RunLine{item.line}", "RunCommand") as step:
                    step.log_path = str(self.log_dir / f"build-line-{item.line}.log")
                    self._run(item, config, where, Path(step.log_path))
            elif item.keyword == "COMPONENTS":
                with self._step("build", "ApplyBuildComponents", "ExecuteComponents") as step:
                    step.log_path = str(self.log_dir / "build")
                    self._components(self.build_instance, ("build", "validate"), Path(step.log_path))
            elif item.keyword in dockerfile.CONFIG_INSTRUCTIONS:
                config.apply(item, where)
                if item.keyword == "WORKDIR":
                    self._host_path(self.build_instance, config.working_dir).mkdir(parents=True, exist_ok=True)
        with self._step("build", "CreateContainerImage", "CreateImage") as step:
            stopped = instances.stop(self.build_instance)
            layer = containers.capture_layer(stopped.upper_dir, self.region, plan.epoch)
            store_pin(self.region, [layer.digest], self.arn)
            created = _created(plan.epoch)
            history.append({"created": created, "created_by": f"kiln: {plan.recipe_arn}"})
            image_config = {
                "architecture": plan.parent.architecture, "os": "linux", "created": created,
                "config": config.as_oci(),
                "rootfs": {"type": "layers",
                           "diff_ids": [parent.diff_id for parent in plan.parent.layers] + [layer.diff_id]},
                "history": history,
            }
            step.outputs = {"layer": layer.digest, "diffId": layer.diff_id}
        with self._step("build", "TerminateBuildContainer", "TerminateInstance"):
            instances.terminate(self.build_instance, force=True)
            self.build_instance = None
        return layer, image_config

    def _host_path(self, instance_id: str | None, path: str) -> Path:
        from kiln.runtime.executor import InstanceExecutor

        assert instance_id is not None
        return InstanceExecutor(instance_id).host_path(path)

    def _run(self, item: Any, config: Any, where: str, log: Path) -> None:
        from kiln.runtime.exec import exec_in
        from kiln.services.container_recipes import dockerfile

        assert self.build_instance is not None
        argv = dockerfile.command(item, where)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as out:
            def sink(line: str) -> None:
                out.write(line if line.endswith("\n") else line + "\n")
                self.progress(f"    {line.rstrip()}")

            result = exec_in(self.build_instance, argv, env=config.run_env(), cwd=config.working_dir or "/",
                             on_stdout=sink, on_stderr=sink)
        if result.exit_code != 0:
            raise ContainerBuildFailed(f"{where}:{item.line}: RUN {item.argument} exited with code {result.exit_code}",
                                       hint=f"its output is in {log}")

    def _components(self, instance_id: str | None, phases: tuple[str, ...], log_dir: Path) -> None:
        from kiln.documents.network import NetworkPolicy
        from kiln.runtime.executor import InstanceExecutor
        from kiln.services.builds.steps import ComponentsFailed, has_phase, run_document

        assert self.plan is not None and instance_id is not None
        plan = self.plan
        policy = NetworkPolicy(reachable=plan.network != "none", host_local=plan.host_local,
                               aws_profile=plan.aws_profile)
        executor = InstanceExecutor(instance_id, network=policy)
        executor.host_path(plan.working_directory).mkdir(parents=True, exist_ok=True)
        log_dir.mkdir(parents=True, exist_ok=True)
        for index, component in enumerate(plan.components):
            if not any(has_phase(component.document, phase) for phase in phases):
                continue
            self._check_cancel()
            ok, message = run_document(
                executor, component.document, name=f"{component.name}-{component.version}", phases=phases,
                parameters=component.parameters, log_dir=log_dir / f"{index:02d}-{component.name}",
                working_directory=plan.working_directory, progress=lambda line: self.progress(f"    {line}"),
            )
            if not ok:
                raise ComponentsFailed(f"component {component.arn} failed in phase {'/'.join(phases)}: {message}",
                                       hint=f"step logs are in {log_dir}")

    # -- test ----------------------------------------------------------------------------------------
    def _test(self, layers: list[Any]) -> None:
        from kiln.services.builds.steps import has_phase
        from kiln.store import containers

        assert self.plan is not None
        if not any(has_phase(component.document, "test") for component in self.plan.components):
            images.skip_step(self.arn, "test", "ApplyTestComponents", "ExecuteComponents",
                             "no component has a test phase")
            return
        with self._step("test", "LaunchTestContainer", "LaunchInstance") as step:
            self.test_instance = self._launch(containers.layer_dirs(layers, self.region), "test")
            images.update(self.arn, test_instance_id=self.test_instance)
            step.outputs = {"instanceId": self.test_instance}
        with self._step("test", "ApplyTestComponents", "ExecuteComponents") as step:
            step.log_path = str(self.log_dir / "test")
            self._components(self.test_instance, ("test",), Path(step.log_path))
        with self._step("test", "TerminateTestContainer", "TerminateInstance"):
            self._terminate(self.test_instance)
            self.test_instance = None

    # -- distribution ----------------------------------------------------------------------------------
    def _distribute(self, layers: list[Any], config: dict[str, Any]) -> None:
        """Name the image in the region's layout; its parent's zstd layers (an AMI's) are written gzip
        compressed for it, which every image tool reads (skopeo's docker-archive refuses zstd)."""
        from kiln.store import containers

        assert self.plan is not None
        self._check_cancel()
        tag = f"{self.row.version}-{self.row.build_number}"
        ref = f"{self.plan.repository}:{tag}"
        with self._step("distribution", "DistributeContainerImage", "DistributeImage") as step:
            self.ref = ref
            portable = containers.portable_layers(layers, self.region)
            store_pin(self.region, [layer.digest for layer in portable], self.arn)
            manifest = containers.write_image(ref, portable, config, self.region)
            uri = f"oci:{containers.layout_dir(self.region)}:{ref}"
            outputs = [{"region": self.region, "imageUris": [uri]}]
            step.outputs = {"ref": ref, "manifestDigest": manifest.digest, "imageUri": uri}
        from kiln.db.engine import session

        with session():  # one transaction: the image is AVAILABLE with its container output, or neither
            images.update(self.arn, output_containers=outputs)
            images.finish_available(self.arn, [])
        self.progress(f"{self.arn}: AVAILABLE ({uri})")

    # -- failure ---------------------------------------------------------------------------------------
    def _terminate(self, instance_id: str) -> None:
        from kiln.runtime import instances

        instances.terminate(instance_id, force=True)

    def _fail(self, status: str, reason: str) -> None:
        from kiln.store import containers

        keep = self.plan is not None and not self.plan.terminate_on_failure
        for instance_id, kept in ((self.build_instance, keep), (self.test_instance, False)):
            if instance_id and not kept:
                with contextlib.suppress(Exception):
                    self._terminate(instance_id)
        if self.ref:
            with contextlib.suppress(Exception):
                containers.remove_image(self.ref, self.region)
        images.fail_running_steps(self.arn, reason)
        if self.build_instance and keep:
            reason += f" (build container {self.build_instance} kept for debugging)"
        images.set_status(self.arn, status, reason)
        self.progress(f"{self.arn}: {status}: {reason}")


def store_pin(region: str, digests: list[str], arn: str) -> None:
    from kiln.store import api as store

    store.pin(region, digests, PIN_PREFIX + arn)


def record_container_image(
    *,
    recipe_arn: str,
    infrastructure_arn: str,
    distribution_arn: str | None = None,
    tests_enabled: bool = True,
    tests_timeout_minutes: int = 720,
    enhanced_metadata: bool = True,
    tags: dict[str, str] | None = None,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
) -> str:
    """Record a PENDING container image of ``account`` in ``region`` once its recipe and configurations
    are checked to exist and be the account's; returns its ARN."""
    from kiln.db.engine import session
    from kiln.services.accounts.regions import require_region
    from kiln.services.builds.plan import check_usable, own_arn
    from kiln.services.configurations.distribution import find_distribution_configuration
    from kiln.services.configurations.infrastructure import find_infrastructure_configuration
    from kiln.services.container_recipes.resource import find_container_recipe

    require_region(region)
    recipe_arn = own_arn(recipe_arn, "container-recipe", account)
    infrastructure_arn = own_arn(infrastructure_arn, "infrastructure-configuration", account)
    distribution_arn = own_arn(distribution_arn, "distribution-configuration", account) if distribution_arn else None
    check_usable(recipe_arn, account, "containerRecipeArn", "container recipe")
    check_usable(infrastructure_arn, account, "infrastructureConfigurationArn", "infrastructure configuration")
    with session() as db:
        recipe = find_container_recipe(db, recipe_arn)
        find_infrastructure_configuration(db, infrastructure_arn)
        if distribution_arn:
            check_usable(distribution_arn, account, "distributionConfigurationArn", "distribution configuration")
            find_distribution_configuration(db, distribution_arn)
        name, version, recipe_arn = recipe.name, recipe.version, recipe.arn
    return images.create_image(
        name=name, version=version, recipe_arn=recipe_arn, infrastructure_arn=infrastructure_arn,
        distribution_arn=distribution_arn, tests_enabled=tests_enabled, tests_timeout_minutes=tests_timeout_minutes,
        enhanced_metadata=enhanced_metadata, tags=tags, region=region, account=account,
    )


def create_and_build_container(
    *, progress: Progress = lambda message: None, use_cache: bool = True, **request: Any
) -> dict[str, Any]:
    """CreateImage of a container recipe, built in the calling process: the final Image shape. (A
    container build is never taken from an earlier one: ``use_cache`` is accepted and has no effect.)"""
    arn = record_container_image(**request)
    progress(arn)
    return ContainerBuild(arn, progress=progress).run()
