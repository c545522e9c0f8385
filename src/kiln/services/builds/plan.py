"""What one build works from: the recipe, infrastructure and distribution resolved to concrete values.

Wildcards resolve here, once, at the start of the build: the parent to an AMI id (bootstrapping an OS
parent when needed), each component reference to its newest matching build. The cache key is a hash
of everything that decides the build's output.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from kiln.documents.network import NetworkPolicy
from kiln.errors import InvalidInput, NotFound
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.services.builds.bootable import BOOTABLE_COMPONENT, check_bootable_parent


@dataclass(frozen=True)
class ResolvedComponent:
    arn: str
    name: str
    version: str
    document: str
    data_hash: str
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildPlan:
    recipe_arn: str
    recipe_name: str
    recipe_version: str
    parent_source: str
    parent_ami: str
    parent_layers: tuple[str, ...]
    components: tuple[ResolvedComponent, ...]
    working_directory: str
    instance_type: str
    network: str
    terminate_on_failure: bool
    infrastructure_arn: str
    distribution_arn: str | None
    ami_name_template: str | None
    ami_description: str | None
    ami_tags: dict[str, str]
    launch_permission: dict[str, Any] | None
    resource_tags: dict[str, str]
    region: str = DEFAULT_REGION
    # The building account: it launches the instances and owns the output AMI and its snapshots.
    account: str = DEFAULT_ACCOUNT
    # What the instance and the host-side network actions may reach and sign with
    # (kiln.services.configurations.network_policy).
    host_local_network: bool = False
    aws_profile: str | None = None
    # The distribution configuration's region entries (kiln.services.builds.distribute carries them out)
    # and the recipe's own AMI tags (on every copy; ``ami_tags`` adds the build region's amiTags).
    distributions: tuple[dict[str, Any], ...] = ()
    recipe_ami_tags: dict[str, str] = field(default_factory=dict)
    # The recipe's amiWatermarks: attached to the output AMI (so inherited by every copy).
    ami_watermarks: tuple[str, ...] = ()
    volume_size: int | None = None  # GiB: the recipe's root block device mapping, the output AMI's root volume
    # Build and test instances are VMs (resourceTags kiln:vm=true: kiln.services.configurations.vm_builds).
    vm: bool = False

    def network_policy(self) -> NetworkPolicy:
        """What the build's instances and its network actions may reach and sign with."""
        return NetworkPolicy(reachable=self.network != "none", host_local=self.host_local_network,
                             aws_profile=self.aws_profile)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for component in data["components"]:
            component.pop("document")
        return data

    def cache_key(self, tests_enabled: bool) -> str:
        """A hash of the inputs that decide the output image (not names, tags or distribution)."""
        material = {
            "parent_layers": list(self.parent_layers),
            "components": [
                {"arn": c.arn, "data": c.data_hash, "parameters": sorted(c.parameters.items())}
                for c in self.components
            ],
            "working_directory": self.working_directory,
            "instance_type": self.instance_type,
            "network": self.network,
            "host_local_network": self.host_local_network,
            "aws_profile": self.aws_profile,
            "tests": tests_enabled,
        }
        if self.volume_size:  # only when given, so the keys of earlier builds stay the same
            material["volume_size"] = self.volume_size
        if self.vm:
            material["vm"] = True
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


DEFAULT_INSTANCE_TYPE = "m5.large"


def resolve_parent_ami(
    parent_value: str, *, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT, volume_size: int | None = None
) -> tuple[str, str]:
    """(the parent AMI ``account`` builds from, its source as the image records it). The AMI is one
    the account may launch (its own, shared with it, public); the source is ``parent_value``, except
    for an SSM parent, recorded as the exact parameter version it resolved to. A bootstrapped parent's
    layer is bounded by the recipe's root ``volume_size`` (GiB)."""
    from kiln.services.ec2.callers import principal
    from kiln.services.recipes.resource import resolve_parent
    from kiln.store import api as store

    parent = resolve_parent(parent_value)
    if parent.kind == "ssm":
        return ssm_parent(parent.value, region=region, account=account)
    if parent.kind == "ami":
        store.assert_launchable(parent.value, region, principal(account))
        return parent.value, parent_value
    if parent.kind == "bootstrap":
        return store.bootstrap_image(parent.value, region=region, owner=account, volume_size=volume_size), parent_value
    return newest_available_image_ami(parent.value, region=region, account=account), parent_value


def ssm_parent(selector: str, *, region: str, account: str) -> tuple[str, str]:
    """A ``parentImage: ssm:<selector>``: the AMI the parameter holds now (one ``account`` may launch)
    and the exact version it came from (``ssm:<name>:<version>``), which the image records."""
    from kiln.services.ec2.callers import principal
    from kiln.services.parameters.resolve import PREFIX, image_parameter
    from kiln.store import api as store

    parameter = image_parameter(PREFIX + selector, account=account, region=region, field="parentImage")
    ami = str(parameter["Value"])
    store.assert_launchable(ami, region, principal(account))
    return ami, f"ssm:{parameter['Name']}:{parameter['Version']}"


def newest_available_image_ami(
    arn_filter: str, *, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT
) -> str:
    """The AMI (in ``region``) of ``account``'s newest AVAILABLE image matching an image ARN with x
    wildcards."""
    from kiln.model.arn import parse_arn
    from kiln.model.versions import VersionFilter
    from kiln.services.builds import records as images
    wanted = parse_arn(arn_filter, field="parentImage", resource_type="image", allow_short=True)
    version_filter = wanted.version or VersionFilter((None, None, None))
    candidates = []
    for image in images.list_images(status="AVAILABLE", account=account):
        arn = parse_arn(image["arn"], resource_type="image")
        version = arn.exact_version
        if arn.name != wanted.name or version is None or not version_filter.matches(version):
            continue
        if wanted.build is not None and arn.build != wanted.build:
            continue
        amis = [ami for ami in image["outputResources"]["amis"] if images.is_local(ami)
                and ami.get("region") == region and ami.get("accountId", DEFAULT_ACCOUNT) == account]
        if amis:
            candidates.append(((version.major, version.minor, version.patch, arn.build or 0), amis[0]["image"]))
    if not candidates:
        raise NotFound(f"no AVAILABLE image matches parentImage {arn_filter}", location="parentImage")
    return str(max(candidates)[1])


def keeps_instance_on_failure(infrastructure: dict[str, Any]) -> bool:
    """Image Builder's terminateInstanceOnFailure: only an explicit false keeps the build instance."""
    return infrastructure.get("terminateInstanceOnFailure", True) is False


NETWORKS = {None: "host", "host": "host", "none": "none", "isolated": "none"}


def network_of(infrastructure: dict[str, Any], arn: str) -> str:
    """kiln's subnets: ``subnetId`` absent or ``host`` reaches the host's network (through the NAT of
    the instance's own network namespace, see kiln.runtime.netns); ``none`` (or ``isolated``) gives
    the build instance only a loopback interface."""
    subnet = infrastructure.get("subnetId")
    if subnet not in NETWORKS:
        raise InvalidInput(
            f"subnetId {subnet!r} is not a kiln network",
            location=f"{arn}: subnetId",
            hint="use host (the default: the host's network) or none (loopback only)",
        )
    return NETWORKS[subnet]


def _parameters(entry: dict[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for parameter in entry.get("parameters") or []:
        value = parameter.get("value") or []
        values[parameter["name"]] = ",".join(value) if isinstance(value, list) else str(value)
    return values


def own_arn(text: str, resource_type: str, account: str) -> str:
    """A full ARN: a short form (``image-recipe/NAME/VERSION``) names ``account``'s resource; a full
    ARN stays as given."""
    from dataclasses import replace

    from kiln.model.arn import parse_arn

    if text.strip().startswith("arn:"):
        return text.strip()
    parsed = parse_arn(text, resource_type=resource_type, allow_short=True)
    return str(replace(parsed, account=account))


def check_usable(arn: str, account: str, field: str, what: str) -> None:
    """An Image Builder resource ``account`` may build with: its own or an Amazon-managed one (kiln
    shares no recipes, components or configurations across accounts); another account's is not
    found, its owner never named."""
    from kiln.model.arn import MANAGED_ACCOUNT

    owner = arn.split(":")[4] if arn.startswith("arn:") and arn.count(":") >= 5 else account
    if owner not in (account, MANAGED_ACCOUNT):
        raise NotFound(f"{what} {arn} does not exist", location=field)


def plan_build(
    recipe_arn: str, infrastructure_arn: str, distribution_arn: str | None, *, region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
) -> BuildPlan:
    from kiln.db.engine import session
    from kiln.services.components.resource import resolve_component
    from kiln.services.configurations.distribution import find_distribution_configuration
    from kiln.services.configurations.infrastructure import find_infrastructure_configuration
    from kiln.services.configurations.network_policy import network_policy
    from kiln.services.configurations.vm_builds import builds_in_vms
    from kiln.services.recipes.resource import find_recipe
    from kiln.store import api as store

    check_usable(recipe_arn, account, "imageRecipeArn", "image recipe")
    check_usable(infrastructure_arn, account, "infrastructureConfigurationArn", "infrastructure configuration")
    if distribution_arn:
        check_usable(distribution_arn, account, "distributionConfigurationArn", "distribution configuration")
    with session() as db:
        recipe = find_recipe(db, recipe_arn)
        infrastructure = find_infrastructure_configuration(db, infrastructure_arn).body
        distribution = (
            find_distribution_configuration(db, distribution_arn).body if distribution_arn else None
        )
        components = []
        for index, entry in enumerate(recipe.components):
            field_name = f"components[{index}].componentArn"
            row = resolve_component(entry["componentArn"], db=db, field=field_name)
            check_usable(row.arn, account, field_name, "component")
            components.append(
                ResolvedComponent(
                    arn=row.arn,
                    name=row.name,
                    version=row.version,
                    document=row.data,
                    data_hash=row.data_hash,
                    parameters=_parameters(entry),
                )
            )
        recipe_name, recipe_version = recipe.name, recipe.version
        parent_value, working_directory = recipe.parent_image, recipe.working_directory or "/tmp"
        recipe_ami_tags = dict(recipe.ami_tags or {})
        ami_watermarks = tuple(recipe.body.get("amiWatermarks") or ())
        volume_size = store.root_volume_gib(recipe.block_device_mappings)

    parent_ami, parent_value = resolve_parent_ami(parent_value, region=region, account=account,
                                                  volume_size=volume_size)
    names = [c.name for c in components]
    if BOOTABLE_COMPONENT in names:
        check_bootable_parent(names, parent_ami, store.layer_dirs(parent_ami, region=region))
    ami_config: dict[str, Any] = {}
    for entry in (distribution or {}).get("distributions", []):
        if entry.get("region") == region:
            ami_config = entry.get("amiDistributionConfiguration") or {}
    instance_types = infrastructure.get("instanceTypes") or [DEFAULT_INSTANCE_TYPE]
    network = network_of(infrastructure, infrastructure_arn)
    policy = network_policy(infrastructure, network)
    return BuildPlan(
        host_local_network=policy.host_local,
        aws_profile=policy.aws_profile,
        recipe_arn=recipe_arn,
        recipe_name=recipe_name,
        recipe_version=recipe_version,
        parent_source=parent_value,
        parent_ami=parent_ami,
        parent_layers=tuple(layer.digest for layer in store.image_layers(parent_ami, region=region)),
        components=tuple(components),
        working_directory=working_directory,
        instance_type=instance_types[0],
        network=network,
        terminate_on_failure=not keeps_instance_on_failure(infrastructure),
        infrastructure_arn=infrastructure_arn,
        distribution_arn=distribution_arn,
        ami_name_template=ami_config.get("name"),
        ami_description=ami_config.get("description"),
        ami_tags={**recipe_ami_tags, **(ami_config.get("amiTags") or {})},
        launch_permission=ami_config.get("launchPermission"),
        resource_tags=dict(infrastructure.get("resourceTags") or {}),
        region=region,
        account=account,
        distributions=tuple((distribution or {}).get("distributions") or ()),
        recipe_ami_tags=recipe_ami_tags,
        ami_watermarks=ami_watermarks,
        volume_size=volume_size,
        vm=builds_in_vms(infrastructure),
    )
