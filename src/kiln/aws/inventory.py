"""What an AWS account holds in one region, read with paginated Describe calls: its own AMIs and
snapshots, and every reference that keeps an AMI in use (instances, launch template versions,
Auto Scaling groups and launch configurations)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kiln.aws.calls import Api
from kiln.aws.errors import AwsError

SSM_PREFIX = "resolve:ssm:"
# every instance state but terminated (and shutting-down, on its way there) holds its AMI
LIVE_INSTANCE_STATES = ("pending", "running", "stopping", "stopped")


@dataclass(frozen=True)
class Ami:
    image_id: str
    name: str
    state: str
    creation_date: datetime
    tags: dict[str, str]
    snapshot_ids: tuple[str, ...]
    public: bool
    deprecation_time: datetime | None
    deregistration_protected: bool
    last_launched: datetime | None = None


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def own_amis(ec2: Api) -> list[Ami]:
    """DescribeImages Owners=self, every page."""
    found = []
    for image in ec2.pages("describe_images", "Images", Owners=["self"], IncludeDeprecated=True,
                           IncludeDisabled=True, MaxResults=1000):
        created = _when(image.get("CreationDate"))
        assert created is not None
        found.append(Ami(
            image_id=image["ImageId"],
            name=image.get("Name") or "",
            state=image.get("State") or "available",
            creation_date=created,
            tags={t["Key"]: t["Value"] for t in image.get("Tags") or []},
            snapshot_ids=tuple(sorted({m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings") or []
                                       if (m.get("Ebs") or {}).get("SnapshotId")})),
            public=bool(image.get("Public")),
            deprecation_time=_when(image.get("DeprecationTime")),
            deregistration_protected=(image.get("DeregistrationProtection") or "disabled") != "disabled",
            last_launched=_when(image.get("LastLaunchedTime")),
        ))  # fmt: skip
    return found


def shared_accounts(ec2: Api, image_id: str) -> tuple[str, ...]:
    """The accounts the AMI is shared with (DescribeImageAttribute launchPermission)."""
    answer = ec2.call("describe_image_attribute", image_id, ImageId=image_id, Attribute="launchPermission")
    return tuple(sorted(p["UserId"] for p in answer.get("LaunchPermissions") or [] if p.get("UserId")))


def own_snapshots(ec2: Api, account: str) -> list[dict[str, Any]]:
    """DescribeSnapshots OwnerIds=self, every page; kept only when ``account`` owns them (an endpoint
    that ignores OwnerIds, moto's, answers every snapshot it holds)."""
    return [
        snapshot
        for snapshot in ec2.pages("describe_snapshots", "Snapshots", OwnerIds=["self"], MaxResults=1000)
        if snapshot.get("OwnerId") == account
    ]


@dataclass
class Users:
    """Who uses which AMI: image id -> why (e.g. ``instance i-… (running)``)."""

    by_image: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    unresolved: list[str] = field(default_factory=list)  # references kiln could not resolve, and why

    def add(self, image_id: str | None, why: str) -> None:
        if image_id:
            self.by_image[image_id].append(why)


def _instances(ec2: Api, users: Users) -> None:
    for reservation in ec2.pages("describe_instances", "Reservations", MaxResults=1000, Filters=[
            {"Name": "instance-state-name", "Values": list(LIVE_INSTANCE_STATES)}]):
        for instance in reservation.get("Instances") or []:
            state = (instance.get("State") or {}).get("Name", "")
            if state in LIVE_INSTANCE_STATES:
                users.add(instance.get("ImageId"), f"instance {instance['InstanceId']} ({state})")


class _SsmImages:
    """``resolve:ssm:NAME[:VERSION]`` image ids through SSM GetParameter, each parameter once."""

    def __init__(self, ssm: Api, users: Users) -> None:
        self.ssm = ssm
        self.users = users
        self.seen: dict[str, str | None] = {}

    def resolve(self, value: str, where: str) -> str | None:
        if not value.startswith(SSM_PREFIX):
            return value
        name = value[len(SSM_PREFIX):]
        if name not in self.seen:
            try:
                self.seen[name] = str(self.ssm.call("get_parameter", name, Name=name)["Parameter"]["Value"])
            except AwsError as error:
                if error.aws_code not in ("ParameterNotFound", "ParameterVersionNotFound"):
                    raise
                self.seen[name] = None
        resolved = self.seen[name]
        if resolved is None:
            self.users.unresolved.append(f"{where}: SSM parameter {name} not found")
        return resolved


def _template_versions(ec2: Api, ssm: _SsmImages, users: Users) -> dict[tuple[str, str], str | None]:
    """Every version of every launch template; returns (template id, "N" | "$Default" | "$Latest") -> AMI."""
    versions: dict[tuple[str, str], str | None] = {}
    for template in ec2.pages("describe_launch_templates", "LaunchTemplates", MaxResults=200):
        template_id = template["LaunchTemplateId"]
        latest = str(template.get("LatestVersionNumber"))
        for version in ec2.pages("describe_launch_template_versions", "LaunchTemplateVersions",
                                 LaunchTemplateId=template_id, MaxResults=200):
            number = str(version["VersionNumber"])
            marks = [m for m, on in (("$Default", version.get("DefaultVersion")), ("$Latest", number == latest)) if on]
            where = f"launch template {template_id} version {number}" + (f" ({', '.join(marks)})" if marks else "")
            raw = (version.get("LaunchTemplateData") or {}).get("ImageId")
            image_id = ssm.resolve(raw, where) if raw else None
            if raw and raw.startswith(SSM_PREFIX) and image_id:
                where += f" via {raw}"
            users.add(image_id, where)
            for key in (number, *marks):
                versions[(template_id, key)] = image_id
            versions[(template.get("LaunchTemplateName", ""), number)] = image_id
    return versions


def _groups(autoscaling: Api, versions: dict[tuple[str, str], str | None], users: Users) -> None:
    configurations = {
        c["LaunchConfigurationName"]: c.get("ImageId")
        for c in autoscaling.pages("describe_launch_configurations", "LaunchConfigurations", MaxRecords=100)
    }
    for name, image_id in configurations.items():
        users.add(image_id, f"launch configuration {name}")
    for group in autoscaling.pages("describe_auto_scaling_groups", "AutoScalingGroups", MaxRecords=100):
        name = group["AutoScalingGroupName"]
        if group.get("LaunchConfigurationName"):
            lc = group["LaunchConfigurationName"]
            users.add(configurations.get(lc), f"auto scaling group {name} (launch configuration {lc})")
        specs = [group.get("LaunchTemplate")]
        mixed = (group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
        specs.append(mixed.get("LaunchTemplateSpecification"))
        specs.extend(o.get("LaunchTemplateSpecification") for o in mixed.get("Overrides") or [])
        for spec in filter(None, specs):
            template = spec.get("LaunchTemplateId") or spec.get("LaunchTemplateName") or ""
            version = str(spec.get("Version") or "$Default")
            image_id = versions.get((template, version))
            users.add(image_id, f"auto scaling group {name} (launch template {template} version {version})")


def users_of_amis(ec2: Api, ssm: Api, autoscaling: Api) -> Users:
    users = Users()
    _instances(ec2, users)
    versions = _template_versions(ec2, _SsmImages(ssm, users), users)
    _groups(autoscaling, versions, users)
    return users
