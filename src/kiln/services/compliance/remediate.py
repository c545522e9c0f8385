"""``kiln compliance remediate``: bring what an audit found out of policy back into it.

* A launch template whose default or latest version uses an image out of policy gets a new version
  (from its default version) with the newest image of the same pipeline (the AMI's
  ``Ec2ImageBuilderArn`` tag names its build, the build its pipeline) that passes the rule in the
  template's account and region; it becomes the default version when the rule says so.
* A ``resolve:ssm:`` template is left as is: a launch takes the parameter's current value, so it is
  fixed when that value is in policy (else it is reported as something remediation cannot fix).
* Each Auto Scaling group whose configuration was out of policy or whose live instances run an
  image out of policy gets an instance refresh (MinHealthyPercentage from the rule), onto the new
  version when the group names a number or a default the rule does not move.

The plan is made first, from one audit; ``dry_run`` returns it without doing anything. Each action
names the EC2 / Auto Scaling call that carries it out (``Call``), the same on kiln's fleet and on a
real AWS account: what the fleet is read from and the calls made through is a :class:`Fleet` (kiln's
store here; ``kiln.services.aws_accounts.compliance`` for ``--backend aws``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select

from kiln.db.tables.autoscaling import InstanceRefreshRow
from kiln.db.tables.images import ImageBuild
from kiln.db.tables.store import StoreImage, StoreTag
from kiln.services.common.unit import unit_of_work
from kiln.services.compliance.audit import GROUP, TEMPLATE, Judge, audit
from kiln.services.compliance.inventory import GroupFacts, Inventory, Template, images_by_id, load
from kiln.services.compliance.rules import Rule
from kiln.services.fleet.template_data import SSM_PREFIX

BUILD_TAG = "Ec2ImageBuilderArn"
CREATE_VERSION, SET_DEFAULT, REFRESH = "create-launch-template-version", "set-default-version", "start-instance-refresh"


@dataclass
class Action:
    account: str
    region: str
    action: str
    resource: str
    detail: str
    params: dict[str, Any] = field(default_factory=dict)
    status: str | None = None  # SUCCESS, FAILED, SKIPPED, DRY_RUN_OK; None: planned only
    error: str | None = None
    depends_on: str | None = None  # the launch template whose new version this action needs
    versions: dict[str, str] = field(default_factory=dict)  # planned → made version numbers, once called

    def call(self, versions: dict[str, str] | None = None) -> dict[str, Any]:
        """The API call that carries the action out; ``versions`` maps the plan's version numbers to
        those EC2 gave (a version remediation creates gets its number when it is made)."""
        made = versions or {}
        if self.action == CREATE_VERSION:
            return {"Operation": "ec2:CreateLaunchTemplateVersion", "Parameters": {
                "LaunchTemplateId": self.resource, "SourceVersion": self.params["SourceVersion"],
                "VersionDescription": self.params.get("VersionDescription", ""),
                "LaunchTemplateData": {"ImageId": self.params["ImageId"]}}}
        if self.action == SET_DEFAULT:
            wanted = self.params["DefaultVersion"]
            return {"Operation": "ec2:ModifyLaunchTemplate", "Parameters": {
                "LaunchTemplateId": self.resource, "DefaultVersion": made.get(wanted, wanted)}}
        params: dict[str, Any] = {"AutoScalingGroupName": self.resource, "Preferences": self.params["Preferences"]}
        desired = self.params.get("DesiredConfiguration")
        if desired:
            params["DesiredConfiguration"] = _with_version(desired, made)
        return {"Operation": "autoscaling:StartInstanceRefresh", "Parameters": params}

    def shape(self) -> dict[str, Any]:
        return {"AccountId": self.account, "Region": self.region, "Action": self.action,
                "ResourceId": self.resource, "Detail": self.detail, "Parameters": self.params,
                "Call": self.call(self.versions), "Status": self.status, "Error": self.error}


def _with_version(desired: dict[str, Any], made: dict[str, str]) -> dict[str, Any]:
    """A DesiredConfiguration with its planned version number replaced by the one EC2 gave."""
    if "LaunchTemplate" in desired:
        spec = desired["LaunchTemplate"]
        return {"LaunchTemplate": {**spec, "Version": made.get(spec["Version"], spec["Version"])}}
    spec = desired["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    spec = {**spec, "Version": made.get(spec["Version"], spec["Version"])}
    return {"MixedInstancesPolicy": {"LaunchTemplate": {"LaunchTemplateSpecification": spec}}}


@dataclass
class Plan:
    rule: Rule
    as_of: datetime
    dry_run: bool
    actions: list[Action] = field(default_factory=list)
    unfixable: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(action.status == "FAILED" for action in self.actions)

    def shape(self) -> dict[str, Any]:
        return {"AsOf": self.as_of, "Rule": self.rule.name, "DryRun": self.dry_run,
                "Actions": [action.shape() for action in self.actions], "Unfixable": self.unfixable,
                "Failed": self.failed, "Warnings": self.warnings}


class Fleet(Protocol):
    """Where remediation reads the fleet and acts: kiln's store, or an AWS account."""

    def inventory(self) -> Inventory: ...

    def lineages(self, inventory: Inventory, account: str, region: str) -> dict[str, list[str]]:
        """Lineage (a pipeline) → the account's images of it in the region, loaded into the inventory."""
        ...

    def active_refreshes(self, groups: list[GroupFacts]) -> set[str]:
        """The ARNs of those groups with an instance refresh in progress."""
        ...

    def execute(self, plan: Plan) -> None:
        """Carry the plan out (``plan.dry_run``: check it, change nothing), each action's status set."""
        ...


def _pipeline_images(inventory: Inventory, account: str, region: str) -> dict[str, list[str]]:
    """Pipeline ARN → the account's images of it in the region (loaded into the inventory)."""
    with unit_of_work() as db:
        tagged = dict(db.execute(select(StoreTag.resource_id, StoreTag.value).join(
            StoreImage, StoreImage.id == StoreTag.resource_id).where(
            StoreTag.key == BUILD_TAG, StoreImage.owner_id == account, StoreImage.region == region,
            StoreImage.deregistered_at.is_(None))).all())
        builds = set(tagged.values())
        pipelines = dict(db.execute(select(ImageBuild.arn, ImageBuild.pipeline_arn).where(
            ImageBuild.arn.in_(builds))).all()) if builds else {}
        missing = set(tagged) - set(inventory.images)
        inventory.images.update(images_by_id(db, missing))
    found: dict[str, list[str]] = {}
    for image_id, build in tagged.items():
        pipeline = pipelines.get(build)
        if pipeline:
            found.setdefault(pipeline, []).append(image_id)
    return found


class Planner:
    def __init__(self, rule: Rule, as_of: datetime, inventory: Inventory, dry_run: bool, fleet: Fleet) -> None:
        self.plan = Plan(rule, as_of, dry_run)
        self.inventory = inventory
        self.fleet = fleet
        self.judge = Judge(inventory, rule, as_of)
        self._by_pipeline: dict[tuple[str, str], dict[str, list[str]]] = {}
        self.new_versions: dict[str, int] = {}  # template id → the version remediation creates

    def _replacement(self, template: Template, ami: str) -> tuple[str | None, str]:
        image = self.inventory.images.get(ami)
        key = (template.account, template.region)
        if key not in self._by_pipeline:
            self._by_pipeline[key] = self.fleet.lineages(self.inventory, *key)
        pipelines = self._by_pipeline[key]
        pipeline = next((p for p, ids in pipelines.items() if ami in ids), None)
        if image is None or pipeline is None:
            return None, f"image {ami} was not made by a pipeline, so there is no newer build of it to use"
        fit = [self.inventory.images[i] for i in pipelines[pipeline]
               if not self.judge.image(i, template.account, template.region).reasons]
        if not fit:
            return None, f"pipeline {pipeline} has no image in policy in account {template.account}, " \
                         f"region {template.region}: run it again"
        return max(fit, key=lambda facts: (facts.creation_date, facts.id)).id, pipeline

    def fix_template(self, template: Template, version: int, why: list[str]) -> None:
        if template.id in self.new_versions:
            return
        given = template.versions.get(version) or ""
        if given.startswith(SSM_PREFIX):
            self._unfixable(template.account, template.region, template.id,
                            f"{given} resolves to an image out of policy ({'; '.join(why)}); "
                            "put a compliant image in the parameter")
            return
        replacement, pipeline = self._replacement(template, given)
        if replacement is None:
            self._unfixable(template.account, template.region, template.id, pipeline)
            return
        number = template.last_number + 1
        self.new_versions[template.id] = number
        self.plan.actions.append(Action(
            template.account, template.region, CREATE_VERSION, template.id,
            f"v{number} from v{template.default_version}: ImageId {replacement} (was {given})",
            {"SourceVersion": str(template.default_version), "ImageId": replacement, "Pipeline": pipeline,
             "VersionDescription": f"kiln compliance: {self.plan.rule.name}"}))
        if self.plan.rule.set_default_version:
            self.plan.actions.append(Action(template.account, template.region, SET_DEFAULT, template.id,
                                            f"default version v{template.default_version} -> v{number}",
                                            {"DefaultVersion": str(number)}, depends_on=template.id))

    def _unfixable(self, account: str, region: str, resource: str, reason: str) -> None:
        entry = {"AccountId": account, "Region": region, "ResourceId": resource, "Reason": reason}
        if entry not in self.plan.unfixable:
            self.plan.unfixable.append(entry)

    def refresh(self, group: GroupFacts, active: set[str], config_bad: bool) -> None:
        """A refresh onto the group's (fixed) configuration; none while that is still out of policy."""
        if group.launch_configuration and config_bad:
            self._unfixable(group.account_id, group.region, group.name,
                            f"launch configuration {group.launch_configuration} cannot be changed; "
                            "move the group to a launch template")
            return
        if group.launch_configuration:  # its instances drifted from a configuration in policy
            self.plan.actions.append(Action(
                group.account_id, group.region, REFRESH, group.name,
                f"onto launch configuration {group.launch_configuration}, MinHealthyPercentage "
                f"{self.plan.rule.min_healthy_percentage}",
                {"Preferences": {"MinHealthyPercentage": self.plan.rule.min_healthy_percentage}}))
            return
        template = self.inventory.templates.get(group.template_id or "")
        if template is None:
            self._unfixable(group.account_id, group.region, group.name,
                            f"launch template {group.template_id} does not exist")
            return
        new = self.new_versions.get(template.id)
        fixed = new is not None or any(override in self.new_versions for override, _ in group.overrides)
        pinned = [f"{t} v{v}" for t, v in group.overrides if t in self.new_versions and str(v).isdigit()]
        if pinned:
            self._unfixable(group.account_id, group.region, group.name,
                            f"its mixed instances override pins {', '.join(pinned)}; point it at $Default")
            return
        if config_bad and not fixed:
            self._unfixable(group.account_id, group.region, group.name,
                            f"its launch template {template.id} has no version in policy to refresh onto")
            return
        if group.arn in active:
            self._unfixable(group.account_id, group.region, group.name,
                            "an instance refresh is already in progress; run remediate again when it ends")
            return
        follows = (group.template_version == "$Latest"
                   or (group.template_version == "$Default" and self.plan.rule.set_default_version))
        params: dict[str, Any] = {"Preferences": {"MinHealthyPercentage": self.plan.rule.min_healthy_percentage}}
        target = f"{template.id} {group.template_version}"
        if new is not None and not follows:
            spec = {"LaunchTemplateId": template.id, "Version": str(new)}
            params["DesiredConfiguration"] = (
                {"MixedInstancesPolicy": {"LaunchTemplate": {"LaunchTemplateSpecification": spec}}}
                if group.mixed else {"LaunchTemplate": spec})
            target = f"{template.id} v{new}"
        elif new is not None:
            target += f" = v{new}"
        self.plan.actions.append(Action(
            group.account_id, group.region, REFRESH, group.name,
            f"onto {target}, MinHealthyPercentage {self.plan.rule.min_healthy_percentage}", params,
            depends_on=template.id if new is not None else None))


def _active_refreshes() -> set[str]:
    from kiln.services.fleet.autoscaling import ACTIVE_REFRESH

    with unit_of_work() as db:
        return set(db.scalars(select(InstanceRefreshRow.group_arn).where(
            InstanceRefreshRow.status.in_(ACTIVE_REFRESH))))


class LocalFleet:
    """kiln's own fleet: the store's images, templates, groups and refreshes."""

    def inventory(self) -> Inventory:
        return load()

    def lineages(self, inventory: Inventory, account: str, region: str) -> dict[str, list[str]]:
        return _pipeline_images(inventory, account, region)

    def active_refreshes(self, groups: list[GroupFacts]) -> set[str]:
        return _active_refreshes()

    def execute(self, plan: Plan) -> None:
        if not plan.dry_run:
            _execute(plan)


def make_plan(rule: Rule, *, as_of: datetime | None = None, account: str | None = None,
              region: str | None = None, dry_run: bool = True, fleet: Fleet | None = None) -> Plan:
    fleet = fleet or LocalFleet()
    inventory = fleet.inventory()
    report = audit(rule, as_of=as_of, account=account, region=region, inventory=inventory)
    planner = Planner(rule, report.as_of, inventory, dry_run, fleet)
    bad_config = {(f.account, f.region, f.resource) for f in report.violations if f.kind == GROUP}
    bad_groups = set(bad_config)
    for finding in report.violations:
        if finding.kind in (TEMPLATE, GROUP) and finding.template_id in inventory.templates \
                and finding.template_version is not None:
            planner.fix_template(inventory.templates[finding.template_id], finding.template_version, finding.reasons)
        elif finding.kind == "instance" and finding.group:
            bad_groups.add((finding.account, finding.region, finding.group))
    chosen = [group for group in sorted(inventory.groups, key=lambda g: (g.account_id, g.region, g.name))
              if (group.account_id, group.region, group.name) in bad_groups]
    active = fleet.active_refreshes(chosen) if chosen else set()
    for group in chosen:
        planner.refresh(group, active, (group.account_id, group.region, group.name) in bad_config)
    planner.plan.warnings = list(inventory.warnings)
    return planner.plan


def _execute(plan: Plan) -> None:
    from kiln.services.fleet.instance_refresh import start_instance_refresh
    from kiln.services.fleet.launch_templates import (
        TemplateRef,
        create_launch_template_version,
        modify_launch_template,
    )

    made: dict[str, str] = {}  # planned version number → the one EC2 semantics gave
    for action in plan.actions:
        action.versions = dict(made)
        where = {"account": action.account, "region": action.region}
        ref = TemplateRef(launch_template_id=action.resource)
        if action.action == CREATE_VERSION:
            result = create_launch_template_version(
                ref, {"ImageId": action.params["ImageId"]}, source_version=action.params["SourceVersion"],
                version_description=action.params["VersionDescription"], **where)
            number = str(result["LaunchTemplateVersion"]["VersionNumber"])
            made[planned_version(action)] = number
        elif action.action == SET_DEFAULT:
            wanted = action.params["DefaultVersion"]
            modify_launch_template(ref, default_version=made.get(wanted, wanted), **where)
        else:
            desired = action.call(made)["Parameters"].get("DesiredConfiguration")
            result = start_instance_refresh(action.resource, preferences=action.params["Preferences"],
                                            desired_configuration=desired, **where)
            action.params["InstanceRefreshId"] = result["InstanceRefreshId"]
        action.status = "SUCCESS"


def planned_version(action: Action) -> str:
    """The version number a create-version action planned (its detail starts ``vN from ...``)."""
    return action.detail.split(" ", 1)[0].removeprefix("v")


def remediate(rule: Rule, *, as_of: datetime | None = None, account: str | None = None,
              region: str | None = None, dry_run: bool = False, fleet: Fleet | None = None) -> Plan:
    """The plan, carried out unless ``dry_run`` (a fleet that can check calls without acting does)."""
    fleet = fleet or LocalFleet()
    plan = make_plan(rule, as_of=as_of, account=account, region=region, dry_run=dry_run, fleet=fleet)
    fleet.execute(plan)
    return plan
