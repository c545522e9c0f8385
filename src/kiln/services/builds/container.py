"""The build of a container image from a container recipe: the build engine
(:class:`kiln.services.builds.workflow.Build`) running the managed container workflows (or the image's
own), with the container handlers of their actions (:mod:`kiln.services.builds.container_actions`).

build-container:      LaunchBuildContainer (a sandbox over the parent's layers) → the Dockerfile
                      template's instructions in order: each RUN a ``RunLine<N>`` RunCommand step (added
                      around the step running the build components), the components placeholder the
                      components' build and validate phases (ApplyBuildComponents); ENV, ARG, WORKDIR,
                      USER, LABEL, CMD, ENTRYPOINT, EXPOSE build up the image config
                      → CreateContainerImage (the sandbox's root volume captured as one layer, mtimes
                      clamped to the recipe's creation time, so the same recipe builds the same bytes)
                      → TerminateBuildContainer
test-container:       LaunchTestContainer (over the new image's layers) → ApplyTestComponents (test
                      phases) → TerminateTestContainer
distribute-container: DistributeContainerImage: the manifest named ``<repositoryName>:<version>-<build>``
                      in the region's OCI layout, with the image becoming AVAILABLE

On failure or cancellation nothing is left: sandboxes terminated (the build one kept with
``terminateInstanceOnFailure: false``), no ref, no pins.
"""

from __future__ import annotations

import contextlib
from typing import Any

from kiln.services.builds import records as images
from kiln.services.builds.container_actions import PIN_PREFIX, host_path, store_pin
from kiln.services.builds.container_plan import ContainerPlan, plan_container
from kiln.services.builds.workflow import Build as _Engine
from kiln.services.builds.workflow import BuildFailed, Progress
from kiln.services.workflows.configure import ImageWorkflow
from kiln.services.workflows.document import StepDecl

ContainerBuildFailed = BuildFailed  # a container build fails as any build does


def is_container_image(recipe_arn: str | None) -> bool:
    """Whether an image's recipe is a container recipe (its build is this module's)."""
    return bool(recipe_arn) and ":container-recipe/" in f":{recipe_arn}"


class ContainerBuild(_Engine):
    """One container image build (its ImageBuild row records a container recipe ARN): the engine with
    the container's plan, Dockerfile program and outputs."""

    image_type = "DOCKER"

    def __init__(self, arn: str, *, progress: Progress, pipeline_version: str | None = None) -> None:
        super().__init__(arn, progress=progress, use_cache=False, pipeline_version=pipeline_version)
        self.plan: ContainerPlan | None = None  # type: ignore[assignment]
        self.where = ""
        self.program: list[Any] = []
        self.cursor = 0  # the Dockerfile instructions before it are applied
        self.config: Any = None  # the image config the instructions build up
        self.history: list[dict[str, Any]] = []
        self.layer: Any = None  # the layer CreateImage captured
        self.image_config: dict[str, Any] | None = None
        self.ref: str | None = None
        self.outputs: list[dict[str, Any]] = []

    def run(self) -> dict[str, Any]:
        from kiln.store import api as store

        try:
            return super().run()
        finally:
            store.unpin_holder(PIN_PREFIX + self.arn)

    def _execute(self) -> None:
        from kiln.services.container_recipes import dockerfile
        from kiln.services.workflows.configure import resolve_workflows

        plan = self.plan = plan_container(self.row.recipe_arn, self.row.infrastructure_arn,
                                          region=self.region, account=self.account)
        # as the AMI build records them (pipelines' dependency checks compare parent_ami and components)
        images.update(self.arn, resolved_inputs={
            "parent_source": plan.parent.source, "parent_ami": plan.parent.ami, "region": self.region,
            "components": [{"arn": c.arn, "name": c.name, "version": c.version} for c in plan.components],
        })
        store_pin(self.region, [layer.digest for layer in plan.parent.layers], self.arn)
        self.workflows = resolve_workflows(self.row.workflows, account=self.account, region=self.region,
                                           container=True)
        self.where = f"{plan.recipe_arn}: dockerfileTemplateData"
        self.program = dockerfile.parse(plan.template, self.where)
        self.config = dockerfile.ImageConfig.of(plan.parent.config)
        self.history = list(plan.parent.history)
        self._run_stages()

    # -- the Dockerfile program ------------------------------------------------------------------------
    def _steps_of(self, workflow: ImageWorkflow) -> list[StepDecl]:
        """A BUILD workflow's steps with a ``RunLine<N>`` RunCommand step per RUN of the template: those
        before the components placeholder ahead of the step running the build components, the others
        after it (with no such step, all of them ahead of CreateImage)."""
        steps = list(workflow.document.steps)
        if workflow.type != "BUILD":
            return steps
        placeholder = next(item.line for item in self.program if item.keyword == "COMPONENTS")
        runs = [item for item in self.program if item.keyword == "RUN"]
        anchor = next((i for i, step in enumerate(steps) if step.action == "ExecuteComponents"), None)
        if anchor is None:
            at = next((i for i, step in enumerate(steps) if step.action == "CreateImage"), len(steps))
            return [*steps[:at], *(self._run_step(item, None) for item in runs), *steps[at:]]
        before = [self._run_step(item, steps[anchor]) for item in runs if item.line < placeholder]
        after = [self._run_step(item, steps[anchor]) for item in runs if item.line > placeholder]
        return [*steps[:anchor], *before, steps[anchor], *after, *steps[anchor + 1:]]

    @staticmethod
    def _run_step(item: Any, anchor: StepDecl | None) -> StepDecl:
        instance = {key: value for key, value in (anchor.inputs if anchor else {}).items()
                    if key in ("instanceId", "instanceId.$")}
        inputs = {**instance, "documentName": "AWS-RunShellScript", "dockerfileLine": item.line,
                  "parameters": {"commands": [item.argument]}}
        return StepDecl(name=f"RunLine{item.line}", action="RunCommand", inputs=inputs)

    def advance(self, until_line: int | None, instance: str | None) -> None:
        """Apply the template's config instructions before ``until_line`` (all with None); a WORKDIR
        also makes its directory in the build container."""
        from kiln.services.container_recipes import dockerfile

        while self.cursor < len(self.program):
            item = self.program[self.cursor]
            if until_line is not None and item.line >= until_line:
                return
            if item.keyword in dockerfile.CONFIG_INSTRUCTIONS:
                self.config.apply(item, self.where)
                if item.keyword == "WORKDIR" and instance is not None:
                    host_path(instance, self.config.working_dir).mkdir(parents=True, exist_ok=True)
            self.cursor += 1

    def instruction(self, line: int) -> Any:
        return next(item for item in self.program if item.line == line)

    # -- the engine's hooks ------------------------------------------------------------------------------
    def _system(self, stage: str) -> dict[str, Any]:
        assert self.plan is not None
        version, build = self.row.version, self.row.build_number
        return {
            "imageType": self.image_type, "platform": "Linux", "workingDirectory": self.plan.working_directory,
            "imageBuildNumber": build, "imageVersionNumber": version, "imageName": self.row.name,
            "imageId": self.plan.parent.ami or self.plan.parent.source, "sourceImageARN": self.plan.parent.source,
            "collectImageMetadata": self.row.enhanced_metadata, "collectImageScanFindings": False,
            "terminateInstanceOnFailure": self.plan.terminate_on_failure,
            "workflowPhase": {"BUILD": "Build", "TEST": "Test"}.get(stage, "Distribution"),
            "cloudWatchLogGroup": f"/aws/imagebuilder/{self.row.name}",
            "cloudWatchLogStream": f"{version}/{build}", "subnetId": self.plan.network,
            "securityGroups": [], "instanceProfileName": "", "s3Logs": {},
            "dateTime": self.row.date_created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def _prepare_distribution(self) -> None:
        if self.layer is None:
            raise BuildFailed("the build workflow made no container image to distribute (no CreateImage step ran)")

    def _finish_available(self) -> None:
        from kiln.db.engine import session

        self.check_cancel()
        if not self.outputs:
            raise BuildFailed("the distribution workflow named no container image (no DistributeImage step ran)")
        with session():  # one transaction: the image is AVAILABLE with its container output, or neither
            images.update(self.arn, output_containers=self.outputs)
            images.finish_available(self.arn, [])
        self.progress(f"{self.arn}: AVAILABLE ({self.outputs[0]['imageUris'][0]})")

    def terminate_instance(self, instance: str) -> None:
        from kiln.runtime import instances

        instances.terminate(instance, force=True)

    def _fail(self, status: str, reason: str) -> None:
        from kiln.services.workflows import executions
        from kiln.store import containers

        keep = self.plan is not None and not self.plan.terminate_on_failure
        for instance in {*self.launched, self.build_instance, self.test_instance}:
            if instance and not (keep and instance == self.build_instance):
                with contextlib.suppress(Exception):
                    self.terminate_instance(instance)
        if self.ref:
            with contextlib.suppress(Exception):
                containers.remove_image(self.ref, self.region)
        images.fail_running_steps(self.arn, reason)
        with contextlib.suppress(Exception):
            executions.fail_running_executions(self.arn, status, reason)
        if self.build_instance and keep:
            reason += f" (build container {self.build_instance} kept for debugging)"
        images.set_status(self.arn, status, reason)
        self.progress(f"{self.arn}: {status}: {reason}")


def create_and_build_container(
    *, progress: Progress = lambda message: None, use_cache: bool = True, **request: Any
) -> dict[str, Any]:
    """CreateImage of a container recipe, built in the calling process: the final Image shape. (A
    container build is never taken from an earlier one: ``use_cache`` is accepted and has no effect.)"""
    from kiln.services.builds.intake import record_image

    arn = record_image(container=True, **request)
    progress(arn)
    return ContainerBuild(arn, progress=progress).run()
