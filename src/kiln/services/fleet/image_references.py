"""EC2 ``DescribeImageReferences``: which of the caller's resources in the region use the given AMIs —
instances (``state-name``), launch templates (their ``version-depth`` newest versions, a
``resolve:ssm:`` image id resolved as a launch would now), ``aws:ec2:image`` parameters whose current
value is the AMI, and image recipes whose parent image it is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from kiln.db.tables.fleet import LaunchTemplateRow, LaunchTemplateVersionRow
from kiln.db.tables.parameters import ParameterRow, ParameterVersionRow
from kiln.ec2_errors import InvalidParameterCombination, InvalidParameterValue, MissingParameter
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model import ec2_model
from kiln.services.common.unit import unit_of_work
from kiln.services.fleet.template_data import SSM_PREFIX
from kiln.services.parameters.names import IMAGE_DATA_TYPE
from kiln.services.parameters.parameter_store import parameter_arn

DEFAULT_DEPTH = 10
MAX_DEPTH = 10000
MAX_IMAGES = 10
KILN_TYPES = ("ec2:Instance", "ec2:LaunchTemplate", "ssm:Parameter", "imagebuilder:ImageRecipe")


def _options(entry: dict[str, Any], where: str) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for index, option in enumerate(entry.get("ResourceTypeOptions") or []):
        name = ec2_model.check_enum(option.get("OptionName", ""), "ImageReferenceOptionName",
                                    f"{where}.ResourceTypeOptions[{index}].OptionName")
        options[name] = [str(value) for value in option.get("OptionValues") or []]
    return options


def _wanted(include_all: bool, resource_types: Sequence[dict[str, Any]] | None) -> dict[str, dict[str, list[str]]]:
    if include_all and resource_types:
        raise InvalidParameterCombination("give IncludeAllResourceTypes or ResourceTypes, not both",
                                          location="ResourceTypes")
    if include_all:
        return {kind: {} for kind in ec2_model.enum("ImageReferenceResourceType")}
    if not resource_types:
        raise MissingParameter("give IncludeAllResourceTypes or ResourceTypes", location="ResourceTypes")
    wanted = {}
    for index, entry in enumerate(resource_types):
        where = f"ResourceTypes[{index}]"
        kind = ec2_model.check_enum(entry.get("ResourceType", ""), "ImageReferenceResourceType",
                                    f"{where}.ResourceType")
        options = _options(entry, where)
        if "version-depth" in options and kind != "ec2:LaunchTemplate":
            raise InvalidParameterValue("version-depth goes with ec2:LaunchTemplate", location=where)
        if "state-name" in options and kind != "ec2:Instance":
            raise InvalidParameterValue("state-name goes with ec2:Instance", location=where)
        wanted[kind] = options
    return wanted


def _depth(options: dict[str, list[str]]) -> int:
    values = options.get("version-depth") or [str(DEFAULT_DEPTH)]
    if len(values) != 1 or not values[0].isdigit() or not 1 <= int(values[0]) <= MAX_DEPTH:
        raise InvalidParameterValue(f"version-depth is one number from 1 to {MAX_DEPTH}", location="version-depth")
    return int(values[0])


def describe_image_references(
    image_ids: Sequence[str],
    *,
    include_all_resource_types: bool = False,
    resource_types: Sequence[dict[str, Any]] | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """``{"ImageReferences": [{ImageId, ResourceType, Arn}]}``, by image then type then ARN; each AMI
    must be one the caller can see (``InvalidAMIID.NotFound`` otherwise)."""
    from kiln.services.ec2.images import describe_image

    if not 1 <= len(image_ids) <= MAX_IMAGES:
        raise InvalidParameterValue(f"give 1 to {MAX_IMAGES} image ids", location="ImageIds")
    wanted = _wanted(include_all_resource_types, resource_types)
    for image_id in image_ids:
        describe_image(image_id, region, account=account)
    ids = set(image_ids)
    found: list[tuple[str, str, str]] = []
    if "ec2:Instance" in wanted:
        found += _instances(ids, wanted["ec2:Instance"].get("state-name"), account, region)
    with unit_of_work() as db:
        if "ec2:LaunchTemplate" in wanted:
            found += _launch_templates(db, ids, _depth(wanted["ec2:LaunchTemplate"]), account, region)
        if "ssm:Parameter" in wanted:
            found += _parameters(db, ids, account, region)
        if "imagebuilder:ImageRecipe" in wanted:
            found += _recipes(db, ids, account, region)
    order = {kind: index for index, kind in enumerate(KILN_TYPES)}
    return {"ImageReferences": [
        {"ImageId": image, "ResourceType": kind, "Arn": arn}
        for image, kind, arn in sorted(set(found), key=lambda item: (item[0], order[item[1]], item[2]))
    ]}


def _instances(ids: set[str], states: list[str] | None, account: str, region: str) -> list[tuple[str, str, str]]:
    from kiln.runtime.instances import list_instances

    return [
        (instance.image_id, "ec2:Instance", f"arn:aws:ec2:{region}:{account}:instance/{instance.id}")
        for instance in list_instances(states=states or None, account=account)
        if instance.region == region and instance.image_id in ids
    ]


def _current_values(db: Any, account: str, region: str) -> dict[str, tuple[str, dict[int, str], dict[str, int]]]:
    """Each ``aws:ec2:image`` parameter of the account in the region: (latest value, values by version,
    label → version)."""
    from kiln.db.tables.parameters import ParameterLabelRow

    rows = {row.id: row for row in db.scalars(select(ParameterRow).where(
        ParameterRow.account_id == account, ParameterRow.region == region))}
    versions: dict[int, dict[int, tuple[str, str]]] = {}
    for version in db.scalars(select(ParameterVersionRow).where(ParameterVersionRow.parameter_id.in_(rows))):
        versions.setdefault(version.parameter_id, {})[version.version] = (version.value, version.data_type)
    labels: dict[int, dict[str, int]] = {}
    for label in db.scalars(select(ParameterLabelRow).where(ParameterLabelRow.parameter_id.in_(rows))):
        labels.setdefault(label.parameter_id, {})[label.label] = label.version
    found = {}
    for parameter_id, row in rows.items():
        kept = versions.get(parameter_id, {})
        latest = kept.get(row.latest_version)
        if latest is not None and latest[1] == IMAGE_DATA_TYPE:
            found[row.name] = (latest[0], {n: value for n, (value, _) in kept.items()}, labels.get(parameter_id, {}))
    return found


def _resolve(image_id: str, parameters: dict[str, tuple[str, dict[int, str], dict[str, int]]]) -> str | None:
    if not image_id.startswith(SSM_PREFIX):
        return image_id
    name, _, tail = image_id[len(SSM_PREFIX):].partition(":")
    if name not in parameters:
        return None
    latest, by_version, labels = parameters[name]
    if not tail:
        return latest
    number = int(tail) if tail.isdigit() else labels.get(tail)
    return by_version.get(number) if number is not None else None


def _launch_templates(db: Any, ids: set[str], depth: int, account: str, region: str) -> list[tuple[str, str, str]]:
    templates = {row.id: row for row in db.scalars(select(LaunchTemplateRow).where(
        LaunchTemplateRow.account_id == account, LaunchTemplateRow.region == region))}
    parameters = _current_values(db, account, region)
    by_template: dict[str, list[tuple[int, str | None]]] = {}
    for template_id, number, image_id in db.execute(select(
        LaunchTemplateVersionRow.template_id, LaunchTemplateVersionRow.version, LaunchTemplateVersionRow.image_id
    ).where(LaunchTemplateVersionRow.template_id.in_(templates))):
        by_template.setdefault(template_id, []).append((number, image_id))
    found = []
    for template_id, versions in by_template.items():
        for _, image_id in sorted(versions, reverse=True)[:depth]:
            ami = _resolve(image_id, parameters) if image_id else None
            if ami in ids:
                found.append((ami, "ec2:LaunchTemplate",
                              f"arn:aws:ec2:{region}:{account}:launch-template/{template_id}"))
    return found


def _parameters(db: Any, ids: set[str], account: str, region: str) -> list[tuple[str, str, str]]:
    return [(latest, "ssm:Parameter", parameter_arn(name, account, region))
            for name, (latest, _, _) in _current_values(db, account, region).items() if latest in ids]


def _recipes(db: Any, ids: set[str], account: str, region: str) -> list[tuple[str, str, str]]:
    from kiln.db.tables.resources import ImageRecipeRow
    from kiln.model.arn import parse_arn

    return [(row.parent_image, "imagebuilder:ImageRecipe", row.arn)
            for row in db.scalars(select(ImageRecipeRow).where(ImageRecipeRow.parent_image.in_(ids)))
            if row.account == account and parse_arn(row.arn).region == region]
