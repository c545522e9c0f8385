"""RunInstances with ``LaunchTemplate{Id|Name, Version}``: the version's settings, the request's
overrides, a ``resolve:ssm:`` ImageId resolved at this launch, and the instance tagged with the
template and version it came from (``aws:ec2launchtemplate:id`` / ``:version``, as EC2 tags it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kiln.ec2_errors import MissingParameter
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.runtime.records import Instance
from kiln.services.common.unit import unit_of_work
from kiln.services.fleet import template_data
from kiln.services.fleet.launch_templates import TemplateRef, find, version_row

TEMPLATE_ID_TAG = "aws:ec2launchtemplate:id"
TEMPLATE_VERSION_TAG = "aws:ec2launchtemplate:version"


def launch_settings(
    ref: TemplateRef, version: str | None, *, account: str, region: str
) -> tuple[str, int, dict[str, Any]]:
    """(template id, version number, the version's data) for a launch of ``version`` (``$Default``
    when None) of the template; an unknown template or version is EC2's refusal."""
    with unit_of_work() as db:
        row = find(db, ref, account, region)
        found = version_row(db, row, version)
        return row.id, found.version, dict(found.data)


def resolve_image(image_id: str, *, account: str, region: str) -> str:
    from kiln.services.parameters.resolve import is_reference, resolve_image_parameter

    return resolve_image_parameter(image_id, account=account, region=region) if is_reference(image_id) else image_id


def run_from_template(
    ref: TemplateRef,
    version: str | None = None,
    *,
    image_id: str | None = None,
    instance_type: str | None = None,
    tags: Mapping[str, str] | None = None,
    network: str = "none",
    host_local: bool = False,
    root_device_type: str | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> Instance:
    """Launch one instance from a launch template version; the arguments given override the
    template's (as RunInstances' parameters do). ``UserData`` is kept in the template but not yet
    handed to the instance."""
    from kiln.runtime.instance_types import DEFAULT_INSTANCE_TYPE
    from kiln.services.ec2.instances import run_instance

    template_id, number, data = launch_settings(ref, version, account=account, region=region)
    chosen = image_id or data.get("ImageId")
    if not chosen:
        raise MissingParameter(
            f"The request must contain the parameter ImageId: neither the request nor version {number} of "
            f"{template_id} gives one", location="ImageId",
        ).at(account=account, region=region)
    ami = resolve_image(chosen, account=account, region=region)
    instance_tags = {**template_data.instance_tags(data), **dict(tags or {}),
                     TEMPLATE_ID_TAG: template_id, TEMPLATE_VERSION_TAG: str(number)}
    return run_instance(
        ami,
        region=region,
        instance_type=instance_type or data.get("InstanceType") or DEFAULT_INSTANCE_TYPE,
        root_device_type=root_device_type,
        network=network,
        host_local=host_local,
        tags=instance_tags,
        account=account,
    )
