"""What the fleet runs, read in a few bulk queries: live instances, Auto Scaling groups, launch
templates (default and latest versions), ``aws:ec2:image`` parameters, and the images they name
(with tags, owner aliases and the allowed images settings that judge them).

An audit of tens of thousands of resources must not cost a query per resource, so everything is
loaded once and joined in memory."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from kiln.db.tables.autoscaling import AutoScalingGroupRow
from kiln.db.tables.fleet import AllowedImagesSettingsRow, LaunchTemplateRow, LaunchTemplateVersionRow
from kiln.db.tables.instances import InstanceRecord
from kiln.db.tables.parameters import ParameterLabelRow, ParameterRow, ParameterVersionRow
from kiln.db.tables.store import StoreImage, StoreTag
from kiln.services.common.unit import unit_of_work
from kiln.services.fleet.template_data import SSM_PREFIX

LIVE_STATES = ("pending", "running")
GROUP_TAG = "aws:autoscaling:groupName"
_CHUNK = 900  # SQLite's bound-parameter limit, with room to spare


@dataclass
class ImageFacts:
    """What an audit judges about an AMI (duck-types the store's ``ImageInfo`` for the criteria)."""

    id: str
    name: str
    owner_id: str
    owner_alias: str | None
    state: str
    creation_date: datetime
    deprecation_time: datetime | None
    tags: dict[str, str] = field(default_factory=dict)
    watermarks: list[Any] = field(default_factory=list)  # the store's Watermark, or one with its attributes


@dataclass
class Template:
    id: str
    name: str
    account: str
    region: str
    default_version: int
    last_number: int = 0
    versions: dict[int, str | None] = field(default_factory=dict)  # number → ImageId as given

    @property
    def latest_version(self) -> int | None:
        return max(self.versions) if self.versions else None


@dataclass(frozen=True)
class InstanceFacts:
    """A live instance (the local store's rows carry the same attributes)."""

    id: str
    image_id: str | None
    account_id: str
    region: str
    state: str
    group: str | None
    name: str | None


@dataclass(frozen=True)
class GroupFacts:
    """An Auto Scaling group and where it launches from: a launch template version (its own, or its
    mixed instances policy's, with the overrides' templates as ``overrides``) or a launch configuration."""

    arn: str
    account_id: str
    region: str
    name: str
    template_id: str | None
    template_version: str | None
    overrides: tuple[tuple[str, str], ...] = ()  # (template id, version) of mixed instances overrides
    launch_configuration: str | None = None
    launch_configuration_image: str | None = None
    mixed: bool = False  # the template version is the mixed instances policy's


@dataclass
class Inventory:
    instances: list[Any]  # InstanceFacts, or rows with the same attributes
    groups: list[GroupFacts]
    templates: dict[str, Template]
    # (account, region, name) → (latest value, {version: value}, {label: version})
    parameters: dict[tuple[str, str, str], tuple[str, dict[int, str], dict[str, int]]]
    images: dict[str, ImageFacts]
    allowed: dict[tuple[str, str], tuple[str, list[dict[str, Any]], bool]]
    warnings: list[str] = field(default_factory=list)  # what could not be read, and what was assumed

    def resolve(self, image_id: str, account: str, region: str) -> tuple[str | None, str | None]:
        """(AMI id, None) for an ImageId as a launch would resolve it now, or (None, why not)."""
        if not image_id.startswith(SSM_PREFIX):
            return image_id, None
        name, _, tail = image_id[len(SSM_PREFIX):].partition(":")
        found = self.parameters.get((account, region, name))
        if found is None:
            return None, f"parameter {name} does not exist or is not an aws:ec2:image parameter"
        latest, by_version, labels = found
        if not tail:
            return latest, None
        number = int(tail) if tail.isdigit() else labels.get(tail)
        value = by_version.get(number) if number is not None else None
        return (value, None) if value else (None, f"parameter {name} has no version or label {tail}")


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    items = sorted(set(values))
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def _templates(db: Any) -> dict[str, Template]:
    core = db.connection()  # plain rows: the ORM's per-row bookkeeping doubles the cost at this scale
    templates = {row[0]: Template(*row) for row in core.execute(select(
        LaunchTemplateRow.id, LaunchTemplateRow.name, LaunchTemplateRow.account_id, LaunchTemplateRow.region,
        LaunchTemplateRow.default_version, LaunchTemplateRow.last_number))}
    for template_id, number, image_id in core.execute(select(
            LaunchTemplateVersionRow.template_id, LaunchTemplateVersionRow.version, LaunchTemplateVersionRow.image_id)):
        if template_id in templates:
            templates[template_id].versions[number] = image_id
    return templates


def _parameters(db: Any) -> dict[tuple[str, str, str], tuple[str, dict[int, str], dict[str, int]]]:
    from kiln.services.parameters.names import IMAGE_DATA_TYPE

    rows = {row.id: row for row in db.execute(select(
        ParameterRow.id, ParameterRow.account_id, ParameterRow.region, ParameterRow.name, ParameterRow.latest_version))}
    versions: dict[int, dict[int, tuple[str, str]]] = {}
    for parameter_id, number, value, data_type in db.execute(select(
            ParameterVersionRow.parameter_id, ParameterVersionRow.version, ParameterVersionRow.value,
            ParameterVersionRow.data_type)):
        versions.setdefault(parameter_id, {})[number] = (value, data_type)
    labels: dict[int, dict[str, int]] = {}
    for parameter_id, label, version in db.execute(select(
            ParameterLabelRow.parameter_id, ParameterLabelRow.label, ParameterLabelRow.version)):
        labels.setdefault(parameter_id, {})[label] = version
    found = {}
    for parameter_id, row in rows.items():
        kept = versions.get(parameter_id, {})
        latest = kept.get(row.latest_version)
        if latest is not None and latest[1] == IMAGE_DATA_TYPE:
            found[(row.account_id, row.region, row.name)] = (
                latest[0], {n: value for n, (value, _) in kept.items()}, labels.get(parameter_id, {}))
    return found


def images_by_id(db: Any, ids: set[str]) -> dict[str, ImageFacts]:
    from kiln.store.images import owner_aliases
    from kiln.store.watermarks import watermarks_by_image

    aliases = owner_aliases(db)
    images: dict[str, ImageFacts] = {}
    for chunk in _chunks(ids):
        for row in db.scalars(select(StoreImage).where(StoreImage.id.in_(chunk),
                                                       StoreImage.deregistered_at.is_(None))):
            images[row.id] = ImageFacts(row.id, row.name, row.owner_id, aliases.get(row.owner_id), row.state,
                                        row.creation_date, row.deprecation_time)
        for resource_id, key, value in db.execute(select(StoreTag.resource_id, StoreTag.key, StoreTag.value)
                                                  .where(StoreTag.resource_id.in_(chunk))):
            if resource_id in images:
                images[resource_id].tags[key] = value
        for image_id, marks in watermarks_by_image(db, chunk).items():
            if image_id in images:
                images[image_id].watermarks = marks
    return images


def load() -> Inventory:
    """Everything an audit looks at, in one read transaction."""
    with unit_of_work() as db:
        # The two tags an audit shows, read in SQL: decoding every instance's tags costs more than the rest.
        instances = list(db.connection().execute(select(
            InstanceRecord.id, InstanceRecord.image_id, InstanceRecord.account_id, InstanceRecord.region,
            InstanceRecord.state, InstanceRecord.tags[GROUP_TAG].as_string().label("group"),
            InstanceRecord.tags["Name"].as_string().label("name"),
        ).where(InstanceRecord.state.in_(LIVE_STATES), InstanceRecord.owned.is_(False))))
        groups = [GroupFacts(*row) for row in db.connection().execute(select(
            AutoScalingGroupRow.arn, AutoScalingGroupRow.account_id, AutoScalingGroupRow.region,
            AutoScalingGroupRow.name, AutoScalingGroupRow.template_id, AutoScalingGroupRow.template_version))]
        templates = _templates(db)
        parameters = _parameters(db)
        allowed = {(row.account_id, row.region): (row.state, list(row.criteria), row.include_own_images)
                   for row in db.scalars(select(AllowedImagesSettingsRow))}
        wanted = {row.image_id for row in instances if row.image_id}
        wanted |= {image for template in templates.values() for image in template.versions.values()
                   if image and not image.startswith(SSM_PREFIX)}
        wanted |= {value for latest, by_version, _ in parameters.values() for value in (latest, *by_version.values())}
        images = images_by_id(db, wanted)
    return Inventory(instances, groups, templates, parameters, images, allowed)
