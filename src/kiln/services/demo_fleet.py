"""``kiln demo fleet``: the seed's question answered end to end — is every instance running a patched
image built in the last 30 days, and do Auto Scaling groups use only approved images?

1. a pipeline builds ``web`` (web-1) on a busybox parent (no network, a few seconds), distributes it
   to the owner and a consumer account, and its launchTemplateConfigurations update the consumer's
   template; the owner's template ``web`` and its group ``web-asg`` of 3 run it;
2. the clock moves 31 days: builds stamp the real time, so the demo dates web-1 (its build record
   and its AMIs) 31 days back instead, which is the same to every judge of age;
3. the audit reports the group out of policy; the pipeline rebuilds with updates (web-2, a new
   recipe version); remediate (MinHealthyPercentage 66) gives the template a version with web-2 and
   rolls the group, reconcile passes running here until the refresh is Successful; the audit is clean;
4. a new advisory (DEMO-2026-0001, HIGH, about the package web-server 1.0-1 that web-1 and web-2 really
   install, fixed in 1.0-2: :mod:`kiln.services.demo_advisory`) is imported and the daily rescan runs:
   the audit by the rule ``fleet-patched`` (scanCondition MaximumSeverityLabel medium) fails web-2; the
   pipeline rebuilds with the fixed package (web-3, whose component installs web-server 1.0-2),
   remediation rolls the group onto it and the audit is clean again;
5. allowed images in ``enabled`` mode refuse a launch of web-1; lifecycle deprecates it, and later
   (15 days on, 46 days old) deletes it and its snapshots, nothing using it any more.

Each stage returns a short table; ``run_fleet_demo`` returns them all (the test asserts on them).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from kiln.db.base import utcnow
from kiln.errors import Conflict, KilnError
from kiln.home import DEFAULT_ACCOUNT
from kiln.services.demo_advisory import ADVISORY, FIXED, PACKAGE, VULNERABLE, install_command, prepare_parent, publish

REGION = "us-east-1"
CONSUMER = ("111122223333", "fleet-consumer")
GROUP = "web-asg"
RULE = "fleet-30-days"
PATCHED_RULE = "fleet-patched"  # RULE and the scan condition
MOVE = timedelta(days=31)
MAX_PASSES = 120

Stage = dict[str, Any]  # {"stage", "columns", "rows", "outcome"}


def _stage(name: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], outcome: str) -> Stage:
    return {"stage": name, "columns": list(columns), "rows": [list(row) for row in rows], "outcome": outcome}


def _world() -> None:
    from kiln.services.accounts.accounts import account_exists, create_account
    from kiln.services.accounts.regions import create_region, list_regions
    from kiln.services.compliance.rules import list_rules

    if any(rule.name == RULE for rule in list_rules()):
        raise Conflict("the fleet demo already ran in this KILN_HOME",
                       hint="run it with a fresh one: KILN_HOME=$(mktemp -d) kiln demo fleet")

    if REGION not in {region["RegionName"] for region in list_regions()}:
        create_region(REGION)
    if not account_exists(CONSUMER[0]):
        create_account(CONSUMER[1], account_id=CONSUMER[0])


def _parent_image(workdir: Path) -> str:
    from kiln.store.api import import_rootfs
    from kiln.store.busybox import busybox_rootfs

    root = busybox_rootfs(workdir / "rootfs")
    prepare_parent(root)
    bash = root / "bin" / "bash"  # ExecuteBash runs bash; busybox's sh stands in for it
    bash.write_text('#!/bin/busybox sh\nexec /bin/busybox sh "$@"\n')
    bash.chmod(0o755)
    return import_rootfs(root, name="fleet-demo-busybox")


def _component_doc(release: str, package: str) -> str:
    return ("name: web-release\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n"
            "      - name: Release\n        action: ExecuteBash\n        inputs:\n          commands:\n"
            f"            - {install_command(package)}\n"
            f"            - echo {release} > /etc/web-release\n")


def _recipe(parent: str, version: str, release: str, package: str = VULNERABLE) -> str:
    from kiln.services.components.resource import create_component
    from kiln.services.recipes.resource import create_image_recipe

    component = create_component({"name": "web-release", "semanticVersion": version, "platform": "Linux",
                                  "data": _component_doc(release, package)})
    recipe = create_image_recipe({"name": "web", "semanticVersion": version, "parentImage": parent,
                                  "components": [{"componentArn": component["componentBuildVersionArn"]}]})
    return str(recipe["imageRecipeArn"])


def _templates() -> tuple[str, str]:
    from kiln.services.fleet.launch_templates import create_launch_template

    data = {"InstanceType": "t3.micro"}
    mine = create_launch_template("web", data, account=DEFAULT_ACCOUNT, region=REGION)
    theirs = create_launch_template("web", data, account=CONSUMER[0], region=REGION)
    return mine["LaunchTemplate"]["LaunchTemplateId"], theirs["LaunchTemplate"]["LaunchTemplateId"]


def _pipeline(recipe: str, consumer_template: str) -> str:
    from kiln.services.configurations.distribution import create_distribution_configuration
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration
    from kiln.services.pipelines.resource import create_image_pipeline

    infrastructure = create_infrastructure_configuration({"name": "web-fleet-infra", "subnetId": "none"})
    distribution = create_distribution_configuration({"name": "web-fleet-dist", "distributions": [{
        "region": REGION,
        "amiDistributionConfiguration": {"targetAccountIds": [CONSUMER[0]]},
        "launchTemplateConfigurations": [{"launchTemplateId": consumer_template, "accountId": CONSUMER[0],
                                          "setDefaultVersion": True}],
    }]})
    return str(create_image_pipeline({
        "name": "web-fleet", "imageRecipeArn": recipe,
        "infrastructureConfigurationArn": infrastructure["infrastructureConfigurationArn"],
        "distributionConfigurationArn": distribution["distributionConfigurationArn"],
        "imageTestsConfiguration": {"imageTestsEnabled": False},
    })["imagePipelineArn"])


def _build(pipeline: str, progress: Callable[[str], None]) -> dict[str, Any]:
    from kiln.services.builds import records
    from kiln.services.pipelines.runs import start_image_pipeline_execution

    arn = start_image_pipeline_execution({"imagePipelineArn": pipeline}, progress=progress)["imageBuildVersionArn"]
    image = records.get_image(arn)
    if image["state"]["status"] != "AVAILABLE":
        raise KilnError(f"the demo build {arn} ended {image['state']['status']}: {image['state'].get('reason')}")
    return image


def _amis(image: dict[str, Any]) -> dict[str, str]:
    """Account → the build's AMI in the demo region."""
    return {ami["accountId"]: ami["image"] for ami in image["outputResources"]["amis"] if ami["region"] == REGION}


def _build_stage(name: str, image: dict[str, Any]) -> Stage:
    rows = [(image["arn"].rsplit("/", 2)[-2] + "/" + image["arn"].rsplit("/", 1)[-1], account, ami)
            for account, ami in sorted(_amis(image).items())]
    return _stage(name, ("IMAGE", "ACCOUNT", "AMI"), rows, f"{len(rows)} AMIs in {REGION}")


def _move_clock(image: dict[str, Any]) -> None:
    """Date the build and its AMIs ``MOVE`` back: the same, to every age judge, as the clock moving on."""
    from sqlalchemy import select

    from kiln.db.tables.images import ImageBuild
    from kiln.db.tables.store import StoreImage
    from kiln.services.common.unit import unit_of_work

    with unit_of_work() as db:
        row = db.get(ImageBuild, image["arn"])
        if row is None:
            raise KilnError(f"the demo build {image['arn']} is gone")
        row.date_created -= MOVE
        for ami in db.scalars(select(StoreImage).where(StoreImage.id.in_(list(_amis(image).values())))):
            ami.creation_date -= MOVE


def _use_image(template: str, ami: str) -> None:
    """The owner's template: a version with web-1, made the default."""
    from kiln.services.fleet.launch_templates import TemplateRef, create_launch_template_version, modify_launch_template

    ref = TemplateRef(launch_template_id=template)
    version = create_launch_template_version(ref, {"ImageId": ami}, source_version="1", region=REGION)
    modify_launch_template(ref, default_version=str(version["LaunchTemplateVersion"]["VersionNumber"]), region=REGION)


def _group(template: str) -> None:
    from kiln.services.fleet.autoscaling import create_auto_scaling_group

    create_auto_scaling_group(GROUP, launch_template={"LaunchTemplateId": template, "Version": "$Default"},
                              min_size=0, max_size=6, desired_capacity=3, default_instance_warmup=0,
                              region=REGION)


def _settle(refresh_id: str | None = None) -> str | None:
    """Reconcile passes here until the group is at capacity and the refresh (if any) has ended."""
    from kiln.services.fleet.asg_reconcile import reconcile
    from kiln.services.fleet.instance_refresh import describe_instance_refreshes

    status = None
    for _ in range(MAX_PASSES):
        reports = reconcile(GROUP, region=REGION)
        if refresh_id is not None:
            found = describe_instance_refreshes(GROUP, region=REGION)["InstanceRefreshes"]
            status = next(r["Status"] for r in found if r["InstanceRefreshId"] == refresh_id)
            if status in ("Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"):
                reconcile(GROUP, region=REGION)
                return status
        elif not reports:
            return None
        time.sleep(0.2)
    raise KilnError(f"the group {GROUP} did not settle in {MAX_PASSES} reconcile passes (refresh: {status})")


def _group_stage(name: str) -> Stage:
    from kiln.services.fleet.autoscaling import describe_auto_scaling_groups
    from kiln.services.fleet.instance_refresh import describe_instance_refreshes

    [group] = describe_auto_scaling_groups([GROUP], region=REGION)["AutoScalingGroups"]
    rows = [(GROUP, member["InstanceId"], member["LifecycleState"], _instance_image(member["InstanceId"]))
            for member in group["Instances"]]
    refreshes = describe_instance_refreshes(GROUP, region=REGION)["InstanceRefreshes"]
    outcome = f"{len(rows)} instances" + (f", refresh {refreshes[0]['Status']}" if refreshes else "")
    return _stage(name, ("GROUP", "INSTANCE", "STATE", "IMAGE"), rows, outcome)


def _instance_image(instance_id: str) -> str:
    from kiln.db.tables.instances import InstanceRecord
    from kiln.services.common.unit import unit_of_work

    with unit_of_work() as db:
        row = db.get(InstanceRecord, instance_id)
        return (row.image_id or "-") if row is not None else "-"


def _audit_stage(name: str, rule: str = RULE) -> tuple[Stage, Any]:
    from kiln.services.compliance.audit import audit
    from kiln.services.compliance.rules import get_rule

    report = audit(get_rule(rule))
    rows = [(f.account, f.kind, f.resource, f.verdict.image_id or "-", f.verdict.age_days,
             "ok" if f.compliant else "; ".join(f.reasons)) for f in report.findings if f.kind != "instance"]
    instances = [f for f in report.findings if f.kind == "instance"]
    rows.append(("*", "instance", f"{len(instances)} running", "-", "-",
                 f"{sum(not f.compliant for f in instances)} out of policy"))
    outcome = "clean" if report.compliant else f"{len(report.violations)} out of policy"
    return _stage(name, ("ACCOUNT", "TYPE", "RESOURCE", "IMAGE", "AGE", "VERDICT"), rows, outcome), report


def _rule() -> None:
    from kiln.services.common.unit import unit_of_work
    from kiln.services.compliance.rules import ComplianceRuleRequest, put_rule

    with unit_of_work() as db:
        put_rule(db, ComplianceRuleRequest(name=RULE, maxAgeDays=30, minHealthyPercentage=66,
                                           regions=[REGION], schedule="cron(0 6 * * ? *)"))
        put_rule(db, ComplianceRuleRequest(name=PATCHED_RULE, maxAgeDays=30, minHealthyPercentage=66,
                                           regions=[REGION], scanCondition={"MaximumSeverityLabel": "medium"}))


def _remediate_stage(dry_run: bool, rule: str = RULE, name: str | None = None) -> tuple[Stage, Any]:
    from kiln.services.compliance.remediate import remediate
    from kiln.services.compliance.rules import get_rule

    plan = remediate(get_rule(rule), dry_run=dry_run)
    rows = [(a.account, a.action, a.resource, a.detail) for a in plan.actions]
    rows += [(u["AccountId"], "cannot remediate", u["ResourceId"], u["Reason"]) for u in plan.unfixable]
    name = name or ("remediate --dry-run" if dry_run else "remediate")
    return _stage(name, ("ACCOUNT", "ACTION", "RESOURCE", "DETAIL"), rows, f"{len(plan.actions)} actions"), plan


def _refused_launch(template: str, old_ami: str) -> Stage:
    from kiln.services.ec2.allowed_images import enable_allowed_images_settings, replace_image_criteria
    from kiln.services.fleet.launch import run_from_template
    from kiln.services.fleet.launch_templates import TemplateRef

    replace_image_criteria([{"CreationDateCondition": {"MaximumDaysSinceCreated": 30}}], REGION)
    enable_allowed_images_settings("enabled", REGION, include_own_images=True)
    try:
        instance = run_from_template(TemplateRef(launch_template_id=template), image_id=old_ami, region=REGION)
    except KilnError as refused:
        return _stage("allowed images (enabled)", ("LAUNCH", "RESULT"),
                      [(old_ami, f"refused: {getattr(refused, 'code', type(refused).__name__)}")], "refused")
    from kiln.runtime.instances import terminate

    terminate(instance.id)
    return _stage("allowed images (enabled)", ("LAUNCH", "RESULT"), [(old_ami, "launched")], "NOT refused")


def _lifecycle(old_ami: str) -> list[Stage]:
    from kiln.services.lifecycle.policies import create_policy
    from kiln.services.lifecycle.runner import run
    from kiln.store import api as store

    def rule(action: str, days: int, snapshots: bool) -> dict[str, Any]:
        include = {"amis": True, **({"snapshots": True} if snapshots else {})}
        return {"action": {"type": action, "includeResources": include},
                "filter": {"type": "AGE", "value": days, "unit": "DAYS"}}

    policy = create_policy({"name": "retire-web", "executionRole": "KilnLifecycleRole", "resourceType": "AMI_IMAGE",
                            "policyDetails": [rule("DEPRECATE", 30, False), rule("DELETE", 45, True)],
                            "resourceSelection": {"recipes": [{"name": "web", "semanticVersion": "x.x.x"}]}})
    snapshots = store.get_image(old_ami, region=REGION).snapshot_ids
    stages = []
    for label, as_of in (("lifecycle now", utcnow()), ("lifecycle 15 days later", utcnow() + timedelta(days=15))):
        run(policy, as_of=as_of)
        try:
            info = store.get_image(old_ami, region=REGION)
            state = "deleted" if info.state == "deregistered" else (
                "deprecated" if info.deprecation_time is not None else info.state)
        except KilnError:
            state = "deleted"
        left = [s for s in snapshots if _snapshot_exists(s)]
        stages.append(_stage(label, ("AMI", "STATE", "SNAPSHOTS LEFT"), [(old_ami, state, len(left))], state))
    return stages


def _snapshot_exists(snapshot_id: str) -> bool:
    from kiln.db.tables.store import StoreSnapshot
    from kiln.services.common.unit import unit_of_work

    with unit_of_work() as db:
        return db.get(StoreSnapshot, snapshot_id) is not None


def run_fleet_demo(*, say: Callable[[Stage], None], progress: Callable[[str], None]) -> list[Stage]:
    stages: list[Stage] = []

    def done(stage: Stage) -> None:
        stages.append(stage)
        say(stage)

    _world()
    _rule()
    with tempfile.TemporaryDirectory(prefix="kiln-fleet-demo-") as workdir:
        parent = _parent_image(Path(workdir))
    mine, theirs = _templates()
    pipeline = _pipeline(_recipe(parent, "1.0.0", "web-1"), theirs)
    web1 = _build(pipeline, progress)
    done(_build_stage("pipeline builds web-1", web1))
    old_ami = _amis(web1)[DEFAULT_ACCOUNT]
    _use_image(mine, old_ami)
    _group(mine)
    _settle()
    done(_group_stage("launch template and group of 3"))
    _move_clock(web1)
    done(_audit_stage("audit, 31 days later")[0])
    _update_pipeline(pipeline, _recipe(parent, "1.0.1", "web-2"))
    web2 = _build(pipeline, progress)
    done(_build_stage("pipeline rebuilds: web-2", web2))
    done(_remediate_stage(dry_run=True)[0])
    stage, plan = _remediate_stage(dry_run=False)
    done(stage)
    refresh = next((a.params.get("InstanceRefreshId") for a in plan.actions if a.params.get("InstanceRefreshId")), None)
    _settle(refresh)
    done(_group_stage("instance refresh (MinHealthyPercentage 66)"))
    done(_audit_stage("audit after remediation")[0])
    for stage in _advisory_stages(pipeline, parent, progress):
        done(stage)
    done(_refused_launch(mine, old_ami))
    for stage in _lifecycle(old_ami):
        done(stage)
    return stages


def _advisory_stages(pipeline: str, parent: str, progress: Callable[[str], None]) -> list[Stage]:
    """A new advisory about the package the running image has; the patched rebuild; the roll onto it."""
    from kiln.services.scanning.jobs import rescan_all

    stages = []
    with tempfile.TemporaryDirectory(prefix="kiln-fleet-advisory-") as workdir:
        publish(Path(workdir))
    scanned = rescan_all()  # what the scheduler's daily rescan does
    stages.append(_stage("new advisory, daily rescan", ("ADVISORY", "PACKAGE", "FIXED IN", "AMIS SCANNED"),
                         [(ADVISORY, f"{PACKAGE} {VULNERABLE}", FIXED, len(scanned))], f"{ADVISORY} imported"))
    stages.append(_audit_stage("audit by the scan rule", PATCHED_RULE)[0])
    _update_pipeline(pipeline, _recipe(parent, "1.0.2", "web-3", FIXED))
    web3 = _build(pipeline, progress)
    rescan_all()
    stages.append(_build_stage(f"pipeline rebuilds with {PACKAGE} {FIXED}: web-3", web3))
    stage, plan = _remediate_stage(False, PATCHED_RULE, "remediate by the scan rule")
    stages.append(stage)
    refresh = next((a.params.get("InstanceRefreshId") for a in plan.actions if a.params.get("InstanceRefreshId")), None)
    _settle(refresh)
    stages.append(_group_stage("instance refresh onto the patched image"))
    stages.append(_audit_stage("audit by the scan rule after remediation", PATCHED_RULE)[0])
    return stages


def _update_pipeline(pipeline: str, recipe: str) -> None:
    """The pipeline's recipe moves to the new version: "rebuilds with updates"."""
    from kiln.services.pipelines.resource import get_image_pipeline, update_image_pipeline

    current = get_image_pipeline(pipeline)["imagePipeline"]
    body = {key: current[key] for key in ("infrastructureConfigurationArn", "distributionConfigurationArn")
            if current.get(key)}
    update_image_pipeline({"imagePipelineArn": pipeline, "imageRecipeArn": recipe, **body,
            "imageTestsConfiguration": {"imageTestsEnabled": False}})

