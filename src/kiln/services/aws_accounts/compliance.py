"""``kiln compliance audit|remediate --backend aws``: the compliance service's one audit and one
remediation plan (``kiln.services.compliance``), over an AWS account's fleet in one region.

- The fleet is read by :mod:`kiln.services.aws_accounts.fleet_inventory`.
- A replacement image is the newest AMI the account owns in the region of the same lineage that
  passes the rule: its ``kiln:PipelineArn`` tag (kiln's builds), else the image of its
  ``Ec2ImageBuilderArn`` tag without version and build (any build of that Image Builder recipe).
- Groups with an instance refresh in progress (DescribeInstanceRefreshes) get none; when that cannot
  be read the report warns and StartInstanceRefresh is left to refuse (``InstanceRefreshInProgress``).
- Each action is its ``Call`` made as is; a version EC2 numbers differently from the plan is mapped
  into the calls after it. A failed call does not stop the others, but what depends on it (the
  default version, the refresh onto it) is SKIPPED. ``--dry-run`` sends CreateLaunchTemplateVersion
  with ``DryRun`` (EC2 checks the call and the permission) and nothing else: ModifyLaunchTemplate
  would name a version not made yet, and Auto Scaling has no DryRun.
"""

from __future__ import annotations

from typing import Any

from kiln.aws.calls import Api
from kiln.aws.errors import AwsError
from kiln.services.aws_accounts import fleet_inventory
from kiln.services.aws_accounts.account import Account
from kiln.services.compliance.inventory import GroupFacts, Inventory
from kiln.services.compliance.remediate import CREATE_VERSION, REFRESH, Plan, planned_version

PIPELINE_TAG, BUILD_TAG = "kiln:PipelineArn", "Ec2ImageBuilderArn"
ACTIVE_REFRESH = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")
_METHODS = {"ec2:CreateLaunchTemplateVersion": "create_launch_template_version",
            "ec2:ModifyLaunchTemplate": "modify_launch_template",
            "autoscaling:StartInstanceRefresh": "start_instance_refresh"}


def lineage(tags: dict[str, str]) -> str | None:
    if tags.get(PIPELINE_TAG):
        return tags[PIPELINE_TAG]
    build = tags.get(BUILD_TAG) or ""
    return build.rsplit("/", 2)[0] if build.count("/") >= 3 else None


class AwsFleet:
    """The compliance service's fleet (``kiln.services.compliance.remediate.Fleet``) on AWS."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self._inventory: Inventory | None = None

    def inventory(self) -> Inventory:
        self._inventory = fleet_inventory.load(self.account)
        return self._inventory

    def _warn(self, line: str) -> None:
        if self._inventory is not None:
            self._inventory.warnings.append(line)

    def lineages(self, inventory: Inventory, account: str, region: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        if (account, region) != (self.account.account_id, self.account.region):
            return found
        for image in self.account.ec2.pages("describe_images", "Images", Owners=["self"], IncludeDeprecated=True,
                                            IncludeDisabled=True, MaxResults=1000):
            facts = fleet_inventory.image_facts(image)
            key = lineage(facts.tags)
            if key:
                inventory.images.setdefault(facts.id, facts)
                found.setdefault(key, []).append(facts.id)
        return found

    def active_refreshes(self, groups: list[GroupFacts]) -> set[str]:
        active = set()
        for group in groups:
            try:
                refreshes = list(self.account.autoscaling.pages(
                    "describe_instance_refreshes", "InstanceRefreshes", AutoScalingGroupName=group.name))
            except AwsError as error:
                self._warn(f"instance refreshes of group {group.name} could not be read: {error}")
                continue
            if any(refresh.get("Status") in ACTIVE_REFRESH for refresh in refreshes):
                active.add(group.arn)
        return active

    def _api(self, operation: str) -> Api:
        return self.account.ec2 if operation.startswith("ec2:") else self.account.autoscaling

    def execute(self, plan: Plan) -> None:
        made: dict[str, str] = {}
        failed: set[str] = set()  # templates whose new version (or default) was not made
        for action in plan.actions:
            action.versions = dict(made)
            call = action.call(made)
            method, params = _METHODS[call["Operation"]], call["Parameters"]
            if action.depends_on in failed:
                action.status, action.error = "SKIPPED", f"launch template {action.depends_on} was not updated"
                failed.add(action.resource)
                continue
            if plan.dry_run:
                if action.action == CREATE_VERSION:
                    self._dry_run(action, method, params, failed)
                continue
            try:
                answer: dict[str, Any] = self._api(call["Operation"]).call(method, action.resource, **params)
            except AwsError as error:
                action.status, action.error = "FAILED", str(error)
                failed.add(action.resource)
                continue
            if action.action == CREATE_VERSION:
                made[planned_version(action)] = str(answer["LaunchTemplateVersion"]["VersionNumber"])
            elif action.action == REFRESH:
                action.params["InstanceRefreshId"] = answer["InstanceRefreshId"]
            action.status = "SUCCESS"

    def _dry_run(self, action: Any, method: str, params: dict[str, Any], failed: set[str]) -> None:
        try:
            self.account.ec2.mutate(method, action.resource, dry_run=True, **params)
        except AwsError as error:
            action.status, action.error = "FAILED", str(error)
            failed.add(action.resource)
            return
        action.status = "DRY_RUN_OK"
