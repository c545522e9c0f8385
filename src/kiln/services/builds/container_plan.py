"""What a container build works from: the recipe, its components and infrastructure resolved, and the
parent's layers, image config and architecture.

``oci:<ref>`` names an image of the region's OCI layout; an Image Builder image ARN (``x`` wildcards
allowed) names the account's newest AVAILABLE matching image, whose container output in the region is
used, else its AMI; anything else resolves to an AMI as an image recipe's parent does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kiln.errors import NotFound
from kiln.services.builds.plan import ResolvedComponent
from kiln.store.layers import LayerInfo

OCI_PREFIX = "oci:"


@dataclass(frozen=True)
class ContainerParent:
    source: str  # what the image records: the ref or AMI the build started from
    layers: list[LayerInfo]
    config: dict[str, Any] | None  # the parent image config's ``config`` (None for an AMI)
    architecture: str  # OCI name (amd64, arm64)
    history: list[dict[str, Any]]
    ami: str | None = None  # the parent AMI, when the parent is one


def resolve_container_parent(value: str, *, region: str, account: str) -> ContainerParent:
    from kiln.model.parent import parse_parent_image

    text = value.strip()
    if text.startswith(OCI_PREFIX):
        return _from_ref(text[len(OCI_PREFIX):], region)
    parent = parse_parent_image(text)
    if parent.kind == "image":
        image = _newest_image(text, region=region, account=account)
        for container in image.get("outputResources", {}).get("containers") or []:
            if container.get("region") == region and container.get("imageUris"):
                return _from_ref(ref_of_uri(container["imageUris"][0]), region)
    from kiln.services.builds.plan import resolve_parent_ami

    ami, source = resolve_parent_ami(text, region=region, account=account)
    return _from_ami(ami, source, region)


def ref_of_uri(uri: str) -> str:
    """The ref name of an ``oci:<layout dir>:<ref>`` URI (a ref holds one colon: repository:tag)."""
    return ":".join(uri.split(":")[-2:])


def _from_ref(ref: str, region: str) -> ContainerParent:
    from kiln.store import containers

    image = containers.read_image(ref, region)
    history = [entry for entry in image.config.get("history") or [] if isinstance(entry, dict)]
    return ContainerParent(f"{OCI_PREFIX}{ref}", image.layers, image.config.get("config") or {},
                           str(image.config.get("architecture") or "amd64"), history)


def _from_ami(ami: str, source: str, region: str) -> ContainerParent:
    from kiln.store import api as store
    from kiln.store.layout import OCI_ARCH

    info = store.get_image(ami, region)
    layers = store.image_layers(ami, region)
    history = [{"created_by": f"kiln: layer {index + 1} of {ami}"} for index in range(len(layers))]
    return ContainerParent(ami if source == ami else f"{source} ({ami})", layers, None,
                           OCI_ARCH.get(info.architecture, info.architecture), history, ami)


def _newest_image(arn_filter: str, *, region: str, account: str) -> dict[str, Any]:
    """The account's newest AVAILABLE image of ``region`` matching an image ARN with x wildcards."""
    from kiln.model.arn import parse_arn
    from kiln.model.versions import VersionFilter
    from kiln.services.builds import records

    wanted = parse_arn(arn_filter, field="parentImage", resource_type="image", allow_short=True)
    version_filter = wanted.version or VersionFilter((None, None, None))
    found: list[tuple[tuple[int, ...], dict[str, Any]]] = []
    for image in records.list_images(status="AVAILABLE", account=account, region=region):
        arn = parse_arn(image["arn"], resource_type="image")
        version = arn.exact_version
        if arn.name != wanted.name or version is None or not version_filter.matches(version):
            continue
        if wanted.build is None or arn.build == wanted.build:
            found.append(((version.major, version.minor, version.patch, arn.build or 0), image))
    if not found:
        raise NotFound(f"no AVAILABLE image matches parentImage {arn_filter}", location="parentImage")
    return max(found, key=lambda pair: pair[0])[1]


@dataclass(frozen=True)
class ContainerPlan:
    recipe_arn: str
    repository: str
    template: str
    working_directory: str
    epoch: int  # the recipe's creation time: every mtime and the config's ``created``
    parent: ContainerParent
    components: tuple[ResolvedComponent, ...]
    instance_type: str
    network: str
    host_local: bool
    aws_profile: str | None
    terminate_on_failure: bool


def plan_container(recipe_arn: str, infrastructure_arn: str, *, region: str, account: str) -> ContainerPlan:
    from kiln.db.engine import session
    from kiln.services.builds.plan import DEFAULT_INSTANCE_TYPE, check_usable, keeps_instance_on_failure, network_of
    from kiln.services.components.resource import resolve_component
    from kiln.services.configurations.infrastructure import find_infrastructure_configuration
    from kiln.services.configurations.network_policy import network_policy
    from kiln.services.container_recipes.resource import find_container_recipe

    with session() as db:
        recipe = find_container_recipe(db, recipe_arn)
        infrastructure = find_infrastructure_configuration(db, infrastructure_arn).body
        components = []
        for index, entry in enumerate(recipe.components):
            field = f"components[{index}].componentArn"
            row = resolve_component(entry["componentArn"], db=db, field=field)
            check_usable(row.arn, account, field, "component")
            values = {p["name"]: ",".join(p.get("value") or []) for p in entry.get("parameters") or []}
            components.append(ResolvedComponent(row.arn, row.name, row.version, row.data, row.data_hash, values))
        recipe_fields = (recipe.arn, recipe.repository_name, recipe.dockerfile, recipe.working_directory or "/tmp",
                         int(recipe.date_created.timestamp()), recipe.parent_image)
    arn, repository, template, working, epoch, parent_value = recipe_fields
    network = network_of(infrastructure, infrastructure_arn)
    policy = network_policy(infrastructure, network)
    return ContainerPlan(
        recipe_arn=arn, repository=repository, template=template, working_directory=working, epoch=epoch,
        parent=resolve_container_parent(parent_value, region=region, account=account),
        components=tuple(components), instance_type=(infrastructure.get("instanceTypes") or [DEFAULT_INSTANCE_TYPE])[0],
        network=network, host_local=policy.host_local, aws_profile=policy.aws_profile,
        terminate_on_failure=not keeps_instance_on_failure(infrastructure),
    )
