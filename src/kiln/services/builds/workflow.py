"""The build of one image: Image Builder's default build, test and distribution workflows.

build:        LaunchBuildInstance → ApplyBuildComponents (build, validate phases) → InventoryCollection
              → RunSanitizeScript → CreateOutputAMI (stops the instance, captures its root volume)
              → TerminateBuildInstance
test:         LaunchTestInstance (from the new AMI) → ApplyTestComponents (test phases)
              → TerminateTestInstance
distribution: DistributeImage (a copy per region and target account: names, descriptions, tags)
              → ModifyImageAttributes (launch permissions on every copy) → ExportImage (S3 exports)
              → UpdateParametersAndLaunchTemplates (with the image becoming AVAILABLE);
              see :mod:`kiln.services.builds.distribute`

The build runs in the region of its image ARN; the distribution configuration is checked (regions,
fields kiln carries out) before anything is made.

Each step is recorded (status, times, message, log). On failure or cancellation nothing is left
behind: every copy the distribution made and the intermediate AMI are deregistered with their
snapshots, exports deleted, and instances terminated — the build instance is kept when the
infrastructure says ``terminateInstanceOnFailure: false``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from kiln.errors import KilnError
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION, logs_dir
from kiln.services.builds import records as images
from kiln.services.builds.distribute import Distribution, check_distribution
from kiln.services.builds.plan import BuildPlan, plan_build

Progress = Callable[[str], None]


class BuildFailed(KilnError):
    """A workflow step failed; the image is FAILED with this reason."""


class BuildCancelled(KilnError):
    """The image was cancelled (CancelImageCreation) between steps."""


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
        self.new_ami: str | None = None
        self.plan: BuildPlan | None = None
        self.region = region_of(arn)
        self.account = images.account_of(arn)
        self.distribution: Distribution | None = None

    # -- helpers -------------------------------------------------------------------------------
    def _check_cancel(self) -> None:
        if images.cancel_requested(self.arn):
            raise BuildCancelled("cancelled by CancelImageCreation")

    def _status(self, status: str, reason: str | None = None) -> None:
        self._check_cancel()
        images.set_status(self.arn, status, reason)
        self.progress(f"{self.arn}: {status}")

    def _component_progress(self, line: str) -> None:
        self.progress(f"    {line}")

    def _step(self, workflow: str, name: str, action: str):  # type: ignore[no-untyped-def]
        self._check_cancel()
        self.progress(f"  {workflow}/{name} ({action})")
        return images.step(self.arn, workflow, name, action)

    # -- the workflow ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        images.update(self.arn, log_directory=str(self.log_dir))
        try:
            self._status("PENDING")
            self.plan = plan_build(self.row.recipe_arn, self.row.infrastructure_arn, self.row.distribution_arn,
                                   region=self.region, account=self.account)
            check_distribution(list(self.plan.distributions), self.row.distribution_arn or "", account=self.account)
            cache_key = self.plan.cache_key(self.row.tests_enabled)
            images.update(self.arn, resolved_inputs=self.plan.as_json(), cache_key=cache_key)
            cached = self._cached_build(cache_key) if self.use_cache else None
            if cached is not None:
                return self._reuse(cached)
            self._status("CREATING")
            self._build_workflow()
            if self.row.tests_enabled:
                self._status("TESTING")
                self._test_workflow()
            self._status("DISTRIBUTING")
            self._distribution_workflow()
            self._finish_available()
        except BuildCancelled as error:
            self._fail("CANCELLED", str(error))
            raise
        except BaseException as error:
            reason = str(error) if isinstance(error, KilnError) else f"{type(error).__name__}: {error}"
            self._fail("FAILED", reason)
            raise BuildFailed(reason, hint=f"kiln image logs {self.arn}") from error
        return images.get_image(self.arn)

    def _build_workflow(self) -> None:
        from kiln.services.builds import steps
        assert self.plan is not None
        with self._step("build", "LaunchBuildInstance", "LaunchInstance") as step:
            self.build_instance = steps.launch(self.plan, self.plan.parent_ami, purpose="build", image_arn=self.arn)
            images.update(self.arn, build_instance_id=self.build_instance)
            step.outputs = {"instanceId": self.build_instance}
        self._status("BUILDING")
        with self._step("build", "ApplyBuildComponents", "ExecuteComponents") as step:
            step.log_path = str(self.log_dir / "build")
            steps.execute_components(self.plan, self.build_instance, ("build", "validate"),
                                     Path(step.log_path), self.arn, self._check_cancel,
                                     progress=self._component_progress)
        with self._step("build", "InventoryCollection", "CollectImageMetadata") as step:
            os_version, packages = steps.inventory(self.build_instance)
            images.update(self.arn, os_version=os_version, packages=packages)
            step.outputs = {"osVersion": os_version, "packageCount": len(packages)}
        with self._step("build", "RunSanitizeScript", "SanitizeInstance"):
            steps.sanitize(self.plan, self.build_instance)
        with self._step("build", "CreateOutputAMI", "CreateImage") as step:
            created = self.row.date_created
            captured = steps.create_ami(
                self.build_instance,
                name=ami_name(self.plan, self.arn, created), description=self.plan.ami_description,
                tags=build_tags(self.plan, self.arn, created, self.row.pipeline_arn, self.pipeline_version),
                owner=self.account, volume_size=self.plan.volume_size,
            )
            self.new_ami = captured.ami
            images.update(self.arn, intermediate_ami_id=self.new_ami)
            step.outputs = {"imageId": self.new_ami}
        with self._step("build", "TerminateBuildInstance", "TerminateInstance"):
            steps.terminate_build(self.build_instance, captured, region=self.plan.region)
            self.build_instance = None

    def _test_workflow(self) -> None:
        from kiln.services.builds import steps
        assert self.plan is not None and self.new_ami is not None
        if not any(steps.has_phase(component.document, "test") for component in self.plan.components):
            images.skip_step(self.arn, "test", "ApplyTestComponents", "ExecuteComponents",
                             "no component has a test phase")
            return
        with self._step("test", "LaunchTestInstance", "LaunchInstance") as step:
            self.test_instance = steps.launch(self.plan, self.new_ami, purpose="test", image_arn=self.arn)
            images.update(self.arn, test_instance_id=self.test_instance)
            step.outputs = {"instanceId": self.test_instance}
        with self._step("test", "ApplyTestComponents", "ExecuteComponents") as step:
            step.log_path = str(self.log_dir / "test")
            steps.execute_components(self.plan, self.test_instance, ("test",), Path(step.log_path),
                                     self.arn, self._check_cancel, progress=self._component_progress)
        with self._step("test", "TerminateTestInstance", "TerminateInstance"):
            steps.terminate(self.test_instance)
            self.test_instance = None

    def _distribution_workflow(self) -> None:
        assert self.plan is not None and self.new_ami is not None
        created = self.row.date_created
        self.distribution = Distribution(
            image_arn=self.arn, build_region=self.plan.region, source_ami=self.new_ami,
            distributions=[dict(entry) for entry in self.plan.distributions],
            base_tags=build_tags(self.plan, self.arn, created, self.row.pipeline_arn, self.pipeline_version,
                                 ami_tags=self.plan.recipe_ami_tags),
            build_date=created, build_version=int(self.arn.rsplit("/", 1)[1]),
            default_name=ami_name(replace(self.plan, ami_name_template=None), self.arn, created),
        )
        with self._step("distribution", "DistributeImage", "DistributeImage") as step:
            step.outputs = self.distribution.copy_all()
        with self._step("distribution", "ModifyImageAttributes", "ModifyImageAttributes") as step:
            step.outputs = self.distribution.share_all()
        if not self.distribution.exports():
            images.skip_step(self.arn, "distribution", "ExportImage", "ExportImage", "no s3ExportConfiguration")
            return
        with self._step("distribution", "ExportImage", "ExportImage") as step:
            step.outputs = self.distribution.export_all()

    def _finish_available(self) -> None:
        from kiln.db.engine import session
        from kiln.services.builds.distribute import publish

        assert self.plan is not None and self.new_ami is not None and self.distribution is not None
        self._check_cancel()
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
        assert self.plan is not None
        own = images.own_ami(cached, self.region)
        assert own is not None  # find_cached answers only images with one
        source_ami = own["image"]
        with self._step("build", "ReuseCachedImage", "CreateImage") as step:
            created = self.row.date_created
            self.new_ami = steps.copy_ami(
                self.plan, source_ami,
                name=ami_name(self.plan, self.arn, created),
                tags=build_tags(self.plan, self.arn, created, self.row.pipeline_arn, self.pipeline_version),
            )
            images.update(self.arn, intermediate_ami_id=self.new_ami, cached_from=cached["arn"],
                          os_version=cached.get("osVersion"), packages=images.packages(cached["arn"]))
            step.outputs = {"imageId": self.new_ami, "cachedFrom": cached["arn"]}
        self._status("DISTRIBUTING")
        self._distribution_workflow()
        self._finish_available()
        return images.get_image(self.arn)

    # -- failure ---------------------------------------------------------------------------------
    def _fail(self, status: str, reason: str) -> None:
        keep = self.plan is not None and not self.plan.terminate_on_failure
        final = abandon(
            self.arn, status, reason,
            build_instance=self.build_instance, test_instance=self.test_instance, ami=self.new_ami,
            keep_build_instance=keep, region=self.region,
        )
        self.progress(f"{self.arn}: {status}: {final}")


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
) -> dict[str, Any]:
    """CreateImage of ``account`` in ``region``, run in the calling process: returns the final Image
    shape (what is checked first: ``record_image``)."""
    arn = record_image(
        recipe_arn=recipe_arn, infrastructure_arn=infrastructure_arn, distribution_arn=distribution_arn,
        tests_enabled=tests_enabled, tests_timeout_minutes=tests_timeout_minutes, tags=tags, region=region,
        account=account,
    )
    progress(arn)
    return Build(arn, progress=progress, use_cache=use_cache).run()


def record_image(
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
    """Record a PENDING image of ``account`` in ``region`` and return its ARN, once the region, the
    resources' owners (``account``'s own or Amazon-managed; short forms name the account's) and the
    distribution configuration are checked."""
    from kiln.db.engine import session
    from kiln.services.accounts.regions import require_region
    from kiln.services.builds.plan import check_usable, own_arn
    from kiln.services.configurations.distribution import find_distribution_configuration
    from kiln.services.recipes.resource import find_recipe

    require_region(region)
    recipe_arn = own_arn(recipe_arn, "image-recipe", account)
    infrastructure_arn = own_arn(infrastructure_arn, "infrastructure-configuration", account)
    distribution_arn = own_arn(distribution_arn, "distribution-configuration", account) \
        if distribution_arn else None
    check_usable(recipe_arn, account, "imageRecipeArn", "image recipe")
    check_usable(infrastructure_arn, account, "infrastructureConfigurationArn", "infrastructure configuration")
    if distribution_arn:
        check_usable(distribution_arn, account, "distributionConfigurationArn", "distribution configuration")
    with session() as db:
        recipe = find_recipe(db, recipe_arn)
        name, version = recipe.name, recipe.version
        if distribution_arn:
            body = find_distribution_configuration(db, distribution_arn).body
            check_distribution(list(body.get("distributions") or []), distribution_arn, account=account)
    arn = images.create_image(
        name=name, version=version, recipe_arn=recipe_arn, infrastructure_arn=infrastructure_arn,
        distribution_arn=distribution_arn, tests_enabled=tests_enabled,
        tests_timeout_minutes=tests_timeout_minutes, enhanced_metadata=enhanced_metadata, tags=tags,
        region=region, account=account,
    )
    return arn
