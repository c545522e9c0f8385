"""``kiln lifecycle preview|run POLICY --backend aws``: a kiln lifecycle policy's rules applied to the
AWS account's own AMIs in one region.

- Every AMI the account owns is a candidate (Image Builder's or not). ``resourceSelection.tagMap``
  selects AMIs by their tags; ``--name GLOB`` narrows the selection by AMI name. A policy that selects
  by recipes is refused: an AMI outside kiln has no recipe.
- On AWS the image is the AMI: each AMI is one image of one retention group (all selected AMIs, newest
  first), and every rule acts on the AMI itself (``includeResources.amis`` is implied);
  ``includeResources.snapshots`` still decides whether a deregistered AMI's snapshots go.
- In use (never disabled or deregistered): instances not terminated, every launch template version
  (``resolve:ssm:`` parameters read with SSM GetParameter), launch configurations and Auto Scaling groups.
- A snapshot is deleted only when no AMI of the account that stays uses it, selected or not.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kiln.aws import actions, inventory
from kiln.aws.errors import AwsError
from kiln.errors import InvalidInput
from kiln.model.lifecycle import IncludeResources, LifecyclePolicy, PolicyDetail, ResourceSelection, ResourceType
from kiln.services.aws_accounts.account import Account
from kiln.services.lifecycle.rules import AmiCandidate, ImageCandidate, Plan, evaluate, selected

GROUP = ("aws-ami", "1.0.0")  # every selected AMI: one retention group
_STATES = {"available": "AVAILABLE", "disabled": "DISABLED", "pending": "BUILDING", "failed": "FAILED",
           "error": "FAILED", "invalid": "FAILED", "transient": "BUILDING"}


@dataclass(frozen=True)
class AwsPolicy:
    """The policy as it acts on AWS: every rule includes the AMI itself."""

    policyDetails: Sequence[PolicyDetail]
    resourceSelection: ResourceSelection


def adapt(policy: LifecyclePolicy) -> AwsPolicy:
    if policy.resourceType is not ResourceType.AMI_IMAGE:
        raise InvalidInput(f"policy {policy.name} is for {policy.resourceType.value}; --backend aws acts on AMIs",
                           location="resourceType")
    if policy.resourceSelection.recipes is not None:
        raise InvalidInput(f"policy {policy.name} selects by recipes; on AWS select AMIs by "
                           "resourceSelection.tagMap (and --name)", location="resourceSelection.recipes")
    details = []
    for detail in policy.policyDetails:
        include = detail.action.includeResources or IncludeResources()
        action = detail.action.model_copy(update={"includeResources": include.model_copy(update={"amis": True})})
        details.append(detail.model_copy(update={"action": action}))
    return AwsPolicy(details, policy.resourceSelection)


def _candidate(ami: inventory.Ami, account: Account, users: list[str], as_of: datetime,
               shared: tuple[str, ...] = ()) -> ImageCandidate:
    status = _STATES.get(ami.state, "FAILED")
    if status == "AVAILABLE" and ami.deprecation_time is not None and ami.deprecation_time <= as_of:
        status = "DEPRECATED"
    state = {"AVAILABLE": "available", "DEPRECATED": "available", "DISABLED": "disabled",
             "BUILDING": "pending"}.get(status, "failed")
    return ImageCandidate(
        arn=f"arn:aws:ec2:{account.region}:{account.account_id}:image/{ami.image_id}",
        name=ami.name, semantic_version=GROUP[1], build_version=1,
        recipe_name=GROUP[0], recipe_version=GROUP[1], date_created=ami.creation_date, tags=ami.tags,
        status=status,
        amis=(AmiCandidate(
            image_id=ami.image_id, region=account.region, account=account.account_id,
            creation_date=ami.creation_date, deprecation_time=ami.deprecation_time, state=state,
            public=ami.public, tags=ami.tags, snapshot_ids=ami.snapshot_ids, in_use_by=tuple(users),
            last_launched=ami.last_launched, shared_accounts=shared,
            deregistration_protected=ami.deregistration_protected,
        ),),
    )  # fmt: skip


def _keep_shared_snapshots(plan: Plan, amis: Sequence[inventory.Ami]) -> None:
    """No snapshot goes while an AMI of the account that stays (selected or not) uses it."""
    going = {a.decision.resource_id for p in plan.images for a in p.amis if a.decision.action == "delete"}
    users: dict[str, list[str]] = defaultdict(list)
    for ami in amis:
        for snap in ami.snapshot_ids:
            users[snap].append(ami.image_id)
    for image in plan.images:
        for ami_plan in image.amis:
            for snap in ami_plan.snapshots:
                others = sorted(u for u in users.get(snap.resource_id, ()) if u not in going)
                if snap.action == "delete" and others:
                    snap.action, snap.reason = "none", f"kept: also used by {', '.join(others)}"


def _excludes_shared(rules: AwsPolicy) -> bool:
    return any(d.exclusionRules and d.exclusionRules.amis and d.exclusionRules.amis.sharedAccounts
               for d in rules.policyDetails)


@dataclass
class AwsPlan:
    account: Account
    plan: Plan
    unresolved: list[str]


def plan(account: Account, policy: LifecyclePolicy, *, name_glob: str | None = None,
         as_of: datetime | None = None) -> AwsPlan:
    rules = adapt(policy)
    as_of = as_of or datetime.now(UTC)
    amis = inventory.own_amis(account.ec2)
    users = inventory.users_of_amis(account.ec2, account.ssm, account.autoscaling)
    candidates = [_candidate(ami, account, users.by_image.get(ami.image_id, []), as_of) for ami in amis]
    chosen = [c for c in candidates if selected(rules.resourceSelection, c)
              and (name_glob is None or fnmatch.fnmatchcase(c.name, name_glob))]
    if _excludes_shared(rules):  # one DescribeImageAttribute per selected AMI: only when a rule asks
        by_id = {ami.image_id: ami for ami in amis}
        chosen = [_candidate(by_id[c.amis[0].image_id], account, list(c.amis[0].in_use_by), as_of,
                             inventory.shared_accounts(account.ec2, c.amis[0].image_id)) for c in chosen]
    found = evaluate(rules, chosen, as_of=as_of)
    _keep_shared_snapshots(found, amis)
    return AwsPlan(account, found, sorted(users.unresolved))


def _step(kind: str, resource: str, action: str, status: str, reason: str = "") -> dict[str, str]:
    return {"Kind": kind, "ResourceId": resource, "Action": action, "Status": status, "Reason": reason}


def run(planned: AwsPlan, *, dry_run: bool) -> dict[str, Any]:
    """Act on the plan: per AMI, its action, then (deregistered) its snapshots the plan deletes."""
    ec2 = planned.account.ec2
    ok = "DRY_RUN_OK" if dry_run else "SUCCESS"
    steps: list[dict[str, str]] = []
    deprecate_at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    for image in planned.plan.images:
        for ami_plan in image.amis:
            decision = ami_plan.decision
            image_id, action = decision.resource_id, decision.action
            if action == "none":
                continue
            try:
                if action == "deprecate":
                    actions.deprecate(ec2, image_id, deprecate_at, dry_run=dry_run)
                elif action == "disable":
                    actions.disable(ec2, image_id, dry_run=dry_run)
                else:
                    actions.deregister(ec2, image_id, dry_run=dry_run)
            except AwsError as error:
                steps.append(_step("ami", image_id, action, "FAILED", str(error)))
                steps.extend(_step("snapshot", s.resource_id, s.action, "SKIPPED", "its AMI was not deregistered")
                             for s in ami_plan.snapshots if s.action == "delete")
                continue
            steps.append(_step("ami", image_id, action, ok))
            for snap in ami_plan.snapshots:
                if snap.action == "delete":
                    steps.append(_delete_snapshot(ec2, snap.resource_id, dry_run, ok))
    failed = sum(step["Status"] == "FAILED" for step in steps)
    return {"AccountId": planned.account.account_id, "Region": planned.account.region, "DryRun": dry_run,
            "Steps": steps, "Failed": failed, "Calls": planned.account.bucket.taken}


def _delete_snapshot(ec2: Any, snapshot_id: str, dry_run: bool, ok: str) -> dict[str, str]:
    try:
        actions.delete_snapshot(ec2, snapshot_id, dry_run=dry_run)
    except AwsError as error:
        if dry_run and error.aws_code == "InvalidSnapshot.InUse":
            # the AMI still holds it: a dry run deregistered nothing
            return _step("snapshot", snapshot_id, "delete", ok, "in use until its AMI is deregistered")
        return _step("snapshot", snapshot_id, "delete", "FAILED", str(error))
    return _step("snapshot", snapshot_id, "delete", ok)
