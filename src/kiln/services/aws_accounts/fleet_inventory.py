"""An AWS account's fleet in one region as ``kiln compliance`` judges it, read with paginated Describe
calls into the same :class:`~kiln.services.compliance.inventory.Inventory` the local audit reads:

- instances pending, running, stopping or stopped (a stopped instance starts again on its AMI);
- every launch template with all its versions (an ``ImageId`` as given, ``resolve:ssm:`` included);
- Auto Scaling groups: a launch template (by id or name, ``$Default``/``$Latest``/a number), a mixed
  instances policy's template and its overrides' templates, or a launch configuration's image;
- ``resolve:ssm:NAME[:VERSION|LABEL]`` parameters through SSM GetParameter (``aws:ec2:image`` ones);
- the images all of these name (DescribeImages by ``image-id``, any owner, deprecated and disabled
  included) and the account's allowed images settings (GetAllowedImagesSettings). Settings that cannot
  be read are judged disabled, and the report's ``Warnings`` says so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kiln.aws.calls import Api
from kiln.aws.errors import AwsError
from kiln.aws.inventory import LIVE_INSTANCE_STATES, SSM_PREFIX
from kiln.services.aws_accounts.account import Account
from kiln.services.compliance.audit import DISABLED
from kiln.services.compliance.inventory import GroupFacts, ImageFacts, InstanceFacts, Inventory, Template
from kiln.store.watermarks import Watermark

IMAGE_DATA_TYPE = "aws:ec2:image"
GROUP_TAG = "aws:autoscaling:groupName"
_FILTER_VALUES = 200  # values one DescribeImages filter takes


def _when(value: str | datetime | None) -> datetime | None:
    """An EC2 time: a string member (``CreationDate``) or one botocore parsed (a timestamp member)."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in item.get("Tags") or []}


def _watermark(mark: dict[str, Any]) -> Watermark | None:
    source, made = _when(mark.get("SourceImageCreationTime")), _when(mark.get("WatermarkCreationTime"))
    if not mark.get("WatermarkKey") or source is None or made is None:
        return None
    return Watermark(mark["WatermarkKey"], mark.get("SourceImageId") or "", mark.get("SourceImageRegion") or "",
                     source, made)


def image_facts(image: dict[str, Any]) -> ImageFacts:
    created = _when(image.get("CreationDate"))
    assert created is not None
    marks = [found for mark in image.get("ImageWatermarks") or [] if (found := _watermark(mark))]
    return ImageFacts(image["ImageId"], image.get("Name") or "", image.get("OwnerId") or "",
                      image.get("ImageOwnerAlias"), image.get("State") or "available", created,
                      _when(image.get("DeprecationTime")), _tags(image), marks)


def images(ec2: Api, ids: set[str]) -> dict[str, ImageFacts]:
    """The images of ``ids`` EC2 still knows (a deregistered one is simply not there)."""
    found: dict[str, ImageFacts] = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), _FILTER_VALUES):
        chunk = wanted[start:start + _FILTER_VALUES]
        for image in ec2.pages("describe_images", "Images", Filters=[{"Name": "image-id", "Values": chunk}],
                               IncludeDeprecated=True, IncludeDisabled=True, MaxResults=1000):
            found[image["ImageId"]] = image_facts(image)
    return found


def _instances(account: Account) -> list[InstanceFacts]:
    found = []
    for reservation in account.ec2.pages("describe_instances", "Reservations", MaxResults=1000, Filters=[
            {"Name": "instance-state-name", "Values": list(LIVE_INSTANCE_STATES)}]):
        for instance in reservation.get("Instances") or []:
            state = (instance.get("State") or {}).get("Name", "")
            if state in LIVE_INSTANCE_STATES:
                tags = _tags(instance)
                found.append(InstanceFacts(instance["InstanceId"], instance.get("ImageId"), account.account_id,
                                           account.region, state, tags.get(GROUP_TAG), tags.get("Name")))
    return found


def _templates(account: Account) -> dict[str, Template]:
    templates = {}
    for item in account.ec2.pages("describe_launch_templates", "LaunchTemplates", MaxResults=200):
        template = Template(item["LaunchTemplateId"], item.get("LaunchTemplateName") or "", account.account_id,
                            account.region, int(item["DefaultVersionNumber"]), int(item["LatestVersionNumber"]))
        for version in account.ec2.pages("describe_launch_template_versions", "LaunchTemplateVersions",
                                         LaunchTemplateId=template.id, MaxResults=200):
            template.versions[int(version["VersionNumber"])] = (version.get("LaunchTemplateData") or {}).get("ImageId")
        templates[template.id] = template
    return templates


def _spec(spec: dict[str, Any], by_name: dict[str, str]) -> tuple[str, str]:
    """(template id, version) of a LaunchTemplateSpecification; a name kiln cannot find stays a name."""
    name = spec.get("LaunchTemplateName") or ""
    return spec.get("LaunchTemplateId") or by_name.get(name, name), str(spec.get("Version") or "$Default")


def _groups(account: Account, templates: dict[str, Template]) -> list[GroupFacts]:
    by_name = {template.name: template.id for template in templates.values()}
    configurations = {c["LaunchConfigurationName"]: c.get("ImageId") for c in account.autoscaling.pages(
        "describe_launch_configurations", "LaunchConfigurations", MaxRecords=100)}
    found = []
    for group in account.autoscaling.pages("describe_auto_scaling_groups", "AutoScalingGroups", MaxRecords=100):
        mixed = (group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
        main = group.get("LaunchTemplate") or mixed.get("LaunchTemplateSpecification")
        template_id, version = _spec(main, by_name) if main else (None, None)
        overrides = tuple(_spec(o["LaunchTemplateSpecification"], by_name)
                          for o in mixed.get("Overrides") or [] if o.get("LaunchTemplateSpecification"))
        configuration = group.get("LaunchConfigurationName")
        found.append(GroupFacts(
            group["AutoScalingGroupARN"], account.account_id, account.region, group["AutoScalingGroupName"],
            template_id, version, overrides, configuration, configurations.get(configuration or ""),
            mixed=bool(mixed) and not group.get("LaunchTemplate"),
        ))  # fmt: skip
    return found


def _parameter(ssm: Api, selector: str) -> dict[str, Any] | None:
    try:
        return dict(ssm.call("get_parameter", selector, Name=selector)["Parameter"])
    except AwsError as error:
        if error.aws_code in ("ParameterNotFound", "ParameterVersionNotFound", "ParameterVersionLabelNotFound"):
            return None
        raise


def _parameters(account: Account, references: set[str]) -> dict[tuple[str, str, str],
                                                                  tuple[str, dict[int, str], dict[str, int]]]:
    """Each ``resolve:ssm:`` reference's parameter: its current value, and the version or label asked."""
    found: dict[tuple[str, str, str], tuple[str, dict[int, str], dict[str, int]]] = {}
    for reference in sorted(references):
        name, _, tail = reference[len(SSM_PREFIX):].partition(":")
        key = (account.account_id, account.region, name)
        if key not in found:
            latest = _parameter(account.ssm, name)
            if latest is None or (latest.get("DataType") or "text") != IMAGE_DATA_TYPE:
                continue
            found[key] = (str(latest["Value"]), {int(latest["Version"]): str(latest["Value"])}, {})
        if tail:
            chosen = _parameter(account.ssm, f"{name}:{tail}")
            if chosen is not None:
                found[key][1][int(chosen["Version"])] = str(chosen["Value"])
                if not tail.isdigit():
                    found[key][2][tail] = int(chosen["Version"])
    return found


def _allowed(account: Account, warnings: list[str]) -> tuple[str, list[dict[str, Any]], bool]:
    """The account's allowed images settings: (state, criteria, the account's own AMIs judged too)."""
    try:
        answer = account.ec2.call("get_allowed_images_settings")
    except AwsError as error:
        warnings.append(f"allowed images settings could not be read, judged as disabled: {error}")
        return DISABLED, [], True
    return str(answer.get("State") or DISABLED), list(answer.get("ImageCriteria") or []), True


def load(account: Account) -> Inventory:
    warnings: list[str] = []
    instances = _instances(account)
    templates = _templates(account)
    groups = _groups(account, templates)
    given = {image for template in templates.values() for image in template.versions.values() if image}
    parameters = _parameters(account, {image for image in given if image.startswith(SSM_PREFIX)})
    wanted = {row.image_id for row in instances if row.image_id}
    wanted |= {image for image in given if not image.startswith(SSM_PREFIX)}
    wanted |= {group.launch_configuration_image for group in groups if group.launch_configuration_image}
    wanted |= {value for latest, by_version, _ in parameters.values() for value in (latest, *by_version.values())}
    allowed = {(account.account_id, account.region): _allowed(account, warnings)}
    return Inventory(instances, groups, templates, parameters, images(account.ec2, wanted), allowed, warnings)
