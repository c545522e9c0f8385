"""The build of one image: its workflows (Image Builder's build, test and distribution workflow
documents) run by one engine.

An image runs the workflows it was created with (CreateImage's or its pipeline's ``workflows``) or the
managed ones (``kiln.services.workflows.managed``), stage by stage: BUILD (status CREATING, BUILDING
once its build instance is up), TEST (TESTING; only with image tests enabled) and DISTRIBUTION
(DISTRIBUTING). The managed documents reproduce kiln's fixed steps:

build-image:      LaunchBuildInstance → ApplyBuildComponents (build, validate phases) → InventoryCollection
                  → RunSanitizeScript → CreateOutputAMI (stops the instance, captures its root volume)
                  → TerminateBuildInstance
test-image:       LaunchTestInstance (from the new AMI) → ApplyTestComponents (test phases)
                  → TerminateTestInstance
distribute-image: DistributeImage (a copy per region and target account: names, descriptions, tags)
                  → ModifyImageAttributes (launch permissions on every copy) → ExportImage (S3 exports)

(a container recipe's image runs build-container, test-container and distribute-container instead:
:mod:`kiln.services.builds.container`), then UpdateParametersAndLaunchTemplates with the image becoming
AVAILABLE (one transaction; see :mod:`kiln.services.builds.distribute`). Each step runs its action's handler
(:mod:`kiln.services.builds.actions`) with its inputs resolved (``$.stepOutputs…``, ``$.parameters…``);
a false ``if`` skips it; ``onFailure: Continue`` goes on past a failed step; a workflow's
``onFailure: CONTINUE`` goes on past a failed workflow. A TEST workflow that runs components when no
component has a test phase is skipped (one SKIPPED record) — unless it has WaitForAction steps, which
run (the others SKIPPED): an approval waits whatever else is skipped, also in a build answered from the
cache, which scans its image again too. Every workflow run is a workflow execution
and every step a step execution (:mod:`kiln.services.workflows.executions`).

The build runs in the region of its image ARN; the distribution configuration is checked (regions,
fields kiln carries out) before anything is made. On failure or cancellation nothing is left behind:
every copy the distribution made and the intermediate AMI are deregistered with their snapshots,
exports deleted, and instances terminated — the build instance is kept when the infrastructure says
``terminateInstanceOnFailure: false``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from kiln.errors import KilnError
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION, logs_dir
from kiln.services.builds import records as images
from kiln.services.builds.distribute import Distribution, check_distribution
from kiln.services.builds.plan import BuildPlan, plan_build
from kiln.services.workflows.configure import ImageWorkflow
from kiln.services.workflows.document import StepDecl

Progress = Callable[[str], None]
STAGE_STATUS = {"BUILD": "CREATING", "TEST": "TESTING", "DISTRIBUTION": "DISTRIBUTING"}


class BuildFailed(KilnError):
    """A workflow step failed; the image is FAILED with this reason."""


class StepTimedOut(KilnError):
    """A step ran past its timeoutSeconds (the action's default when the document gives none)."""


class BuildCancelled(KilnError):
    """The image was cancelled (CancelImageCreation) between steps."""

    step_status = "CANCELLED"  # what the step it interrupts records


def region_of(arn: str) -> str:
    """The region of an image ARN: where the build runs."""
    return arn.split(":")[3]


def build_tags(plan: BuildPlan, arn: str, created: datetime, pipeline_arn: str | None,
               pipeline_version: str | None, ami_tags: dict[str, str] | None = None) -> dict[str, str]:
    """Tags on every AMI kiln builds: creation date, recipe, image and (for pipelines) pipeline version,
    then ``ami_tags`` (default: the recipe's and the build region's distribution amiTags)."""
    tags = {
        "CreatedBy": "EC2 Image Builder",
        "Ec2ImageBuilderArn": arn,
        "kiln:CreationDate": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kiln:RecipeArn": plan.recipe_arn,
        "kiln:ParentImage": plan.parent_ami,
    }
    if plan.parent_source.startswith("ssm:"):
        tags["kiln:ParentImageParameter"] = plan.parent_source  # the parameter version it resolved
    if pipeline_arn:
        tags["kiln:PipelineArn"] = pipeline_arn
    if pipeline_version:
        tags["kiln:PipelineVersion"] = pipeline_version
    return {**tags, **(plan.ami_tags if ami_tags is None else ami_tags)}


def ami_name(plan: BuildPlan, arn: str, created: datetime) -> str:
    from kiln.model.templates import expand_name

    build = int(arn.rsplit("/", 1)[1])
    if plan.ami_name_template:
        return expand_name(plan.ami_name_template, build_date=created, build_version=build)
    return f"{plan.recipe_name} {created.strftime('%Y-%m-%dT%H-%M-%SZ')} {plan.recipe_version}-{build}"


class Build:
    image_type = "AMI"  # $.imagebuilder.imageType; DOCKER picks the container handlers of actions

    def __init__(self, arn: str, *, progress: Progress, use_cache: bool = True,
                 pipeline_version: str | None = None) -> None:
        self.arn = arn
        self.progress = progress
        self.use_cache = use_cache
        self.pipeline_version = pipeline_version
        row = images.get_row(arn)
        self.row = row
        self.log_dir = logs_dir() / "images" / arn.split(":image/", 1)[1].replace("/", "_")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.build_instance: str | None = None
        self.test_instance: str | None = None
        self.launched: list[str] = []  # every instance a step launched and no step terminated yet
        self.captured: dict[str, Any] = {}  # instance id -> the volume CreateImage captured from it
        self.new_ami: str | None = None
        self.plan: BuildPlan | None = None
        self.region = region_of(arn)
        self.account = images.account_of(arn)
        self.distribution: Distribution | None = None
        self.workflows: list[ImageWorkflow] = []
        # (time.monotonic() deadline, step name, timeoutSeconds) of the step running
        self.step_deadline: tuple[float, str, int] | None = None
        self.workflow_outputs: dict[str, Any] = {}

    # -- what the actions use ----------------------------------------------------------------------
    def check_cancel(self) -> None:
        """Between a step's pieces of work: stop if the image was cancelled or the step ran past its
        ``timeoutSeconds`` (checked where its action checks, e.g. between components, and when it
        ends: a step that finishes late has failed)."""
        if images.cancel_requested(self.arn):
            raise BuildCancelled("cancelled by CancelImageCreation")
        if self.step_deadline is not None and time.monotonic() > self.step_deadline[0]:
            _, name, seconds = self.step_deadline
            raise StepTimedOut(f"step {name} timed out after {seconds} seconds")

    def _status(self, status: str, reason: str | None = None) -> None:
        from kiln.db.engine import session

        with session():  # the cancel check and the change in one transaction
            self.check_cancel()
            images.set_status(self.arn, status, reason)
        self.progress(f"{self.arn}: {status}")

    def component_progress(self, line: str) -> None:
        self.progress(f"    {line}")

    def ami_name(self) -> str:
        assert self.plan is not None
        return ami_name(self.plan, self.arn, self.row.date_created)

    def tags(self) -> dict[str, str]:
        assert self.plan is not None
        return build_tags(self.plan, self.arn, self.row.date_created, self.row.pipeline_arn, self.pipeline_version)

    def forget_instance(self, instance: str) -> None:
        if instance in self.launched:
            self.launched.remove(instance)
        if self.build_instance == instance:
            self.build_instance = None
        if self.test_instance == instance:
            self.test_instance = None

    def _step(self, workflow: str, name: str, action: str, **columns: Any):  # type: ignore[no-untyped-def]
        def check() -> None:  # in the transaction that records the step's start
            self.check_cancel()
            self.progress(f"  {workflow}/{name} ({action})")

        return images.step(self.arn, workflow, name, action, check=check, **columns)

    # -- the build ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:

        images.update(self.arn, log_directory=str(self.log_dir))
        try:
            self._status("PENDING")
            self._execute()
        except BuildCancelled as error:
            self._fail("CANCELLED", str(error))
            raise
        except BaseException as error:
            reason = str(error) if isinstance(error, KilnError) else f"{type(error).__name__}: {error}"
            self._fail("FAILED", reason)
            raise BuildFailed(reason, hint=f"kiln image logs {self.arn}") from error
        return images.get_image(self.arn)

    def _execute(self) -> None:
        """Plan, then run the stages (or reuse a cached build) up to AVAILABLE."""
        from kiln.services.workflows.configure import resolve_workflows

        self.plan = plan_build(self.row.recipe_arn, self.row.infrastructure_arn, self.row.distribution_arn,
                               region=self.region, account=self.account)
        check_distribution(list(self.plan.distributions), self.row.distribution_arn or "", account=self.account)
        self.workflows = resolve_workflows(self.row.workflows, account=self.account, region=self.region)
        cache_key = self._cache_key()
        images.update(self.arn, resolved_inputs=self.plan.as_json(), cache_key=cache_key)
        cached = self._cached_build(cache_key) if self.use_cache else None
        if cached is not None:
            self._reuse(cached)
            return
        self._run_stages()

    def _run_stages(self) -> None:
        for stage in STAGE_STATUS:
            if stage == "TEST":
                self._scan()  # first in the test phase: approvers waiting in a TEST workflow see findings
            self._run_stage(stage)
        self._finish_available()

    def _cache_key(self) -> str:
        """The plan's key; with workflows other than the managed ones, their builds and parameters too."""
        assert self.plan is not None
        key = self.plan.cache_key(self.row.tests_enabled)
        if all(workflow.managed for workflow in self.workflows):
            return key
        material = [key, *([w.arn, w.content_hash, w.on_failure, w.parameters] for w in self.workflows)]
        return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()

    def _run_stage(self, stage: str, only_waits: str | None = None) -> None:
        from kiln.services.workflows import executions

        runs = [workflow for workflow in self.workflows if workflow.type == stage]
        if stage == "TEST" and not self.row.tests_enabled:
            for workflow in runs:
                executions.start_execution(self.arn, workflow.arn, stage, parallel_group=workflow.parallel_group,
                                           status="SKIPPED", message="image tests are disabled")
            return
        if not runs:
            return
        if stage == "DISTRIBUTION":
            self._prepare_distribution()
        self._status(STAGE_STATUS[stage])
        for workflow in runs:
            self._run_workflow(workflow, only_waits)

    def _scan(self) -> None:
        """The ``ScanImage`` step after the test phase, when the image was started with
        ``imageScanningConfiguration`` enabled (kiln.services.scanning.build_step registers its action)."""
        from kiln.services.builds.actions import StepCall, handler_for
        from kiln.store.scans import scan_request

        config = scan_request(self.arn)
        if config is None:
            return
        step = StepDecl(name="ScanImage", action="ScanImage")
        inputs = {"imageScanningConfiguration": config}
        if not self.row.tests_enabled:
            images.skip_step(self.arn, "test", step.name, step.action, "image tests are disabled", inputs=inputs)
            return
        with self._step("test", step.name, step.action, inputs=inputs) as record:
            record.outputs = handler_for(step)(self, StepCall("TEST", step, inputs, record))

    def _nothing_to_test(self, workflow: ImageWorkflow) -> str | None:
        """The step a TEST workflow skips whole when no component has a test phase."""
        from kiln.services.builds import steps

        assert self.plan is not None
        runs_components = [step for step in workflow.document.steps if step.action == "ExecuteComponents"]
        if workflow.type != "TEST" or not runs_components:
            return None
        if any(steps.has_phase(component.document, "test") for component in self.plan.components):
            return None
        return str(runs_components[0].name)

    def _system(self, stage: str) -> dict[str, Any]:
        """``$.imagebuilder.*`` for a workflow of ``stage``."""
        assert self.plan is not None
        version, build = self.row.version, self.row.build_number
        return {
            "imageType": self.image_type, "platform": self.row.platform,
            "workingDirectory": self.plan.working_directory,
            "imageBuildNumber": build, "imageVersionNumber": version, "imageName": self.row.name,
            "imageId": self.plan.parent_ami, "sourceImageARN": self.plan.parent_source,
            "collectImageMetadata": self.row.enhanced_metadata, "collectImageScanFindings": False,
            "terminateInstanceOnFailure": self.plan.terminate_on_failure,
            "workflowPhase": {"BUILD": "Build", "TEST": "Test"}.get(stage, "Distribution"),
            "cloudWatchLogGroup": f"/aws/imagebuilder/{self.plan.recipe_name}",
            "cloudWatchLogStream": f"{version}/{build}", "subnetId": self.plan.network,
            "securityGroups": [], "instanceProfileName": "", "s3Logs": {},
            "dateTime": self.row.date_created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def _run_workflow(self, workflow: ImageWorkflow, only_waits: str | None = None) -> None:
        """Run a workflow; with ``only_waits`` (why), only its WaitForAction steps (approvals wait whatever
        else is skipped: a cached image's tests, a test phase no component has), the others SKIPPED."""
        from kiln.services.workflows import executions

        stage = workflow.type
        skipped = self._nothing_to_test(workflow)
        if skipped is not None and _waits(workflow):
            skipped, only_waits = None, only_waits or "no component has a test phase"
        if only_waits is not None and not _waits(workflow):
            executions.start_execution(self.arn, workflow.arn, stage, status="SKIPPED",
                                       parallel_group=workflow.parallel_group, message=only_waits)
            return
        if skipped is not None:
            execution = executions.start_execution(self.arn, workflow.arn, stage, status="SKIPPED",
                                                   parallel_group=workflow.parallel_group,
                                                   message="no component has a test phase")
            images.skip_step(self.arn, stage.lower(), skipped, "ExecuteComponents", "no component has a test phase",
                             workflow_execution_id=execution)
            return
        execution = executions.start_execution(self.arn, workflow.arn, stage, parallel_group=workflow.parallel_group)
        launched_before = list(self.launched)
        try:
            self._run_steps(workflow, execution, only_waits)
        except BuildCancelled as error:
            executions.finish_execution(execution, "CANCELLED", str(error)[:500])
            raise
        except Exception as error:
            executions.finish_execution(execution, "FAILED", (str(error) or type(error).__name__)[:500])
            if workflow.on_failure != "CONTINUE":
                raise
            self.progress(f"  {stage.lower()} workflow {workflow.arn} failed (onFailure CONTINUE): {error}")
            self._roll_back_instances(launched_before)
            return
        executions.finish_execution(execution, "COMPLETED")

    def _run_steps(self, workflow: ImageWorkflow, execution: str, only_waits: str | None = None) -> None:
        from kiln.services.builds.actions import Skipped, StepCall, StepFailed, handler_for
        from kiln.services.workflows.expressions import Context

        stage = workflow.type
        context = Context(dict(workflow.parameters), {}, self.workflow_outputs, self._system(stage))
        for step in self._steps_of(workflow):
            columns = {"workflow_execution_id": execution, "description": step.description,
                       "on_failure": step.on_failure, "timeout_seconds": step.timeout_seconds}
            if only_waits is not None and step.action != "WaitForAction":
                images.skip_step(self.arn, stage.lower(), step.name, step.action, only_waits, inputs=step.inputs,
                                 **columns)
                continue
            if step.condition is not None and not context.decide(step.condition):
                images.skip_step(self.arn, stage.lower(), step.name, step.action, "the step's if condition is false",
                                 inputs=step.inputs, **columns)
                continue
            try:
                inputs, problem = context.resolve_inputs(step.inputs), None
            except ValueError as error:  # a reference to an output a failed (Continue) step never made
                inputs, problem = step.inputs, error
            try:
                with self._step(stage.lower(), step.name, step.action, inputs=inputs, **columns) as record:
                    if problem is not None:
                        raise StepFailed(f"step {step.name}: {problem}")
                    seconds = self._timeout(step)
                    self.step_deadline = (time.monotonic() + seconds, step.name, seconds)
                    try:
                        answer = handler_for(step, self.image_type)(self, StepCall(stage, step, inputs, record))
                        self.check_cancel()
                    finally:
                        self.step_deadline = None
                    if isinstance(answer, Skipped):
                        record.status, record.message = "SKIPPED", answer.reason
                    else:
                        record.outputs = answer
            except BuildCancelled:
                raise
            except Exception as error:
                if step.on_failure != "Continue":
                    raise
                self.progress(f"  {step.name} failed (onFailure Continue): {error}")
                continue
            context.step_outputs[step.name] = dict(record.outputs)
            if step.action == "LaunchInstance" and stage == "BUILD" and images.get_row(self.arn).status == "CREATING":
                self._status("BUILDING")
        for name, value in workflow.document.outputs:
            with contextlib.suppress(ValueError):
                self.workflow_outputs[name] = context.operand(value)

    def _steps_of(self, workflow: ImageWorkflow) -> list[StepDecl]:
        """The steps a workflow runs (a container build adds its Dockerfile template's RUN lines)."""
        return list(workflow.document.steps)

    def terminate_instance(self, instance: str) -> None:
        from kiln.services.builds import steps

        steps.terminate(instance)

    @staticmethod
    def _timeout(step: StepDecl) -> int:
        from kiln.services.workflows.catalog import ACTIONS

        return step.timeout_seconds or ACTIONS[step.action].default_timeout

    def _roll_back_instances(self, launched_before: list[str]) -> None:
        """A workflow that failed and was let go on: the instances it launched go (its rollback)."""

        for instance in [i for i in self.launched if i not in launched_before]:
            if instance == self.build_instance and self.plan is not None and not self.plan.terminate_on_failure:
                continue
            with contextlib.suppress(Exception):
                self.terminate_instance(instance)
            self.forget_instance(instance)

    def _prepare_distribution(self) -> None:
        assert self.plan is not None
        if self.new_ami is None:
            raise BuildFailed("the build workflow made no image to distribute (no CreateImage step ran)")
        created = self.row.date_created
        self.distribution = Distribution(
            image_arn=self.arn, build_region=self.plan.region, source_ami=self.new_ami,
            distributions=[dict(entry) for entry in self.plan.distributions],
            base_tags=build_tags(self.plan, self.arn, created, self.row.pipeline_arn, self.pipeline_version,
                                 ami_tags=self.plan.recipe_ami_tags),
            build_date=created, build_version=int(self.arn.rsplit("/", 1)[1]),
            default_name=ami_name(replace(self.plan, ami_name_template=None), self.arn, created),
        )

    def _finish_available(self) -> None:
        from kiln.db.engine import session
        from kiln.services.builds.distribute import publish

        assert self.plan is not None and self.new_ami is not None and self.distribution is not None
        self.check_cancel()
        entries, outputs = self.distribution.distributions, self.distribution.outputs
        references = ("ssmParameterConfigurations", "launchTemplateConfigurations")
        if not any(entry.get(key) for entry in entries for key in references):
            images.finish_available(self.arn, outputs)
        else:
            # One transaction (opened after the step's row): the parameters and launch templates
            # point at the new AMIs only if the image becomes AVAILABLE, and the image only with them.
            with self._step("distribution", "UpdateParametersAndLaunchTemplates", "UpdateReferences") as step, \
                    session():
                step.outputs = publish(self.arn, entries, outputs)
                images.finish_available(self.arn, outputs)
        self.progress(f"{self.arn}: AVAILABLE ({self.new_ami})")

    # -- cache -----------------------------------------------------------------------------------
    def _cached_build(self, cache_key: str) -> dict[str, Any] | None:
        return images.find_cached(cache_key, exclude=self.arn, region=self.region)

    def _reuse(self, cached: dict[str, Any]) -> dict[str, Any]:
        from kiln.services.builds import steps
        from kiln.services.workflows import executions

        assert self.plan is not None
        own = images.own_ami(cached, self.region)
        assert own is not None  # find_cached answers only images with one
        source_ami = own["image"]
        build_workflow = next(w for w in self.workflows if w.type == "BUILD")
        execution = executions.start_execution(self.arn, build_workflow.arn, "BUILD")
        with self._step("build", "ReuseCachedImage", "CreateImage", workflow_execution_id=execution) as step:
            created = self.row.date_created
            self.new_ami = steps.copy_ami(
                self.plan, source_ami,
                name=ami_name(self.plan, self.arn, created),
                tags=build_tags(self.plan, self.arn, created, self.row.pipeline_arn, self.pipeline_version),
            )
            from kiln.services.builds.actions import attach_watermarks
            from kiln.services.builds.approval import mark_new_ami
            from kiln.store.watermarks import drop_marks_of

            drop_marks_of(self.new_ami, source_ami)  # a new build inherits its parent's marks, not its twin's
            attach_watermarks(self.plan, self.new_ami)
            from kiln.services.inventory.artifacts import carry_sboms

            carry_sboms(source_ami, self.region, self.new_ami, self.region)
            images.update(self.arn, intermediate_ami_id=self.new_ami, cached_from=cached["arn"],
                          os_version=cached.get("osVersion"), packages=images.package_records(cached["arn"]))
            mark_new_ami(self.arn)
            step.outputs = {"imageId": self.new_ami, "cachedFrom": cached["arn"]}
        executions.finish_execution(execution, "COMPLETED", f"reused the image of {cached['arn']}")
        # The tests are not run again; the scan is (advisories change) and approvals wait again (a decision
        # is of one build, never inherited from the cached one).
        self._scan()
        self._run_stage("TEST", only_waits=f"reused the tested image {cached['arn']}")
        self._run_stage("DISTRIBUTION")
        self._finish_available()
        return images.get_image(self.arn)

    # -- failure ---------------------------------------------------------------------------------
    def _fail(self, status: str, reason: str) -> None:
        from kiln.services.builds import steps
        from kiln.store.scans import set_state

        keep = self.plan is not None and not self.plan.terminate_on_failure
        with contextlib.suppress(Exception):
            set_state(self.arn, "ABANDONED", f"the image ended {status} before its scan")
        for instance in self.launched:  # what custom workflows launched beyond the build and test instances
            if instance not in (self.build_instance, self.test_instance):
                with contextlib.suppress(Exception):
                    steps.terminate(instance)
        final = abandon(
            self.arn, status, reason,
            build_instance=self.build_instance, test_instance=self.test_instance, ami=self.new_ami,
            keep_build_instance=keep, region=self.region,
        )
        self.progress(f"{self.arn}: {status}: {final}")


def _waits(workflow: ImageWorkflow) -> bool:
    """Whether a workflow has a WaitForAction step (an approval)."""
    return any(step.action == "WaitForAction" for step in workflow.document.steps)


def abandon(
    arn: str,
    status: str,
    reason: str,
    *,
    build_instance: str | None,
    test_instance: str | None,
    ami: str | None,
    keep_build_instance: bool,
    region: str = "local",
) -> str:
    """End a build that cannot finish: nothing left behind but, when asked, the build instance for
    debugging. Returns the reason recorded on the image."""
    from kiln.services.builds import steps
    from kiln.services.builds.distribute import discard
    from kiln.services.workflows import executions

    if build_instance and not keep_build_instance:
        with contextlib.suppress(Exception):
            steps.terminate(build_instance)
    if test_instance:
        with contextlib.suppress(Exception):
            steps.terminate(test_instance)
    with contextlib.suppress(Exception):
        discard(arn, region)  # every copy and export the distribution made, before their source
    if ami:
        with contextlib.suppress(Exception):
            steps.discard_ami(ami, region=region)
    images.fail_running_steps(arn, reason)
    with contextlib.suppress(Exception):
        executions.fail_running_executions(arn, status, reason)
    if build_instance and keep_build_instance:
        reason += f" (build instance {build_instance} kept for debugging)"
    images.set_status(arn, status, reason)
    return reason


def create_and_build(
    *,
    recipe_arn: str,
    infrastructure_arn: str,
    distribution_arn: str | None = None,
    tests_enabled: bool = True,
    tests_timeout_minutes: int = 720,
    use_cache: bool = True,
    tags: dict[str, str] | None = None,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
    progress: Progress = lambda message: None,
    workflows: list[dict[str, Any]] | None = None,
    execution_role: str | None = None,
) -> dict[str, Any]:
    """CreateImage of ``account`` in ``region``, run in the calling process: returns the final Image
    shape (what is checked first: ``record_image``)."""
    from kiln.services.builds.intake import record_image

    arn = record_image(
        recipe_arn=recipe_arn, infrastructure_arn=infrastructure_arn, distribution_arn=distribution_arn,
        tests_enabled=tests_enabled, tests_timeout_minutes=tests_timeout_minutes, tags=tags, region=region,
        account=account, workflows=workflows, execution_role=execution_role,
    )
    progress(arn)
    return Build(arn, progress=progress, use_cache=use_cache).run()
