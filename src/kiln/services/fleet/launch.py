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
USER_DATA_PATH = "/var/lib/cloud/instance/user-data.txt"  # where cloud-init keeps it
USER_DATA_LOG = "/var/log/cloud-init-output.log"
# Run inside the instance with the user data on stdin: keep it where cloud-init does and, if it is a
# script (#!), start it detached from this exec, as cloud-init runs it once at first boot.
HAND_OVER = (
    f"mkdir -p {USER_DATA_PATH.rsplit('/', 1)[0]} {USER_DATA_LOG.rsplit('/', 1)[0]} && cat > {USER_DATA_PATH} && "
    f"if [ \"$(head -c 2 {USER_DATA_PATH})\" = '#!' ]; then chmod 700 {USER_DATA_PATH} && "
    f"setsid {USER_DATA_PATH} > {USER_DATA_LOG} 2>&1 < /dev/null & fi"
)
HAND_OVER_TIMEOUT = 60.0


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
    template's (as RunInstances' parameters do). ``UserData`` is handed to the instance as cloud-init
    would: kept at ``/var/lib/cloud/instance/user-data.txt`` and, when it is a ``#!`` script, run
    once, its output in ``/var/log/cloud-init-output.log``."""
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
    instance = run_instance(
        ami,
        region=region,
        instance_type=instance_type or data.get("InstanceType") or DEFAULT_INSTANCE_TYPE,
        root_device_type=root_device_type,
        network=network,
        host_local=host_local,
        tags=instance_tags,
        account=account,
    )
    user_data = template_data.user_data(data)
    if user_data is not None:
        _hand_over(instance, user_data)
    return instance


def _hand_over(instance: Instance, user_data: bytes) -> None:
    """Give the instance its user data; a failure is written to its console, as cloud-init's would be
    (EC2 never fails a launch over user data)."""
    from kiln.errors import KilnError
    from kiln.runtime.exec import exec_in

    try:
        result = exec_in(instance.id, ["/bin/sh", "-c", HAND_OVER], stdin=user_data, timeout=HAND_OVER_TIMEOUT)
        problem = None if result.exit_code == 0 else f"exit {result.exit_code}: {result.stderr.strip()[:500]}"
    except KilnError as error:
        problem = str(error)
    if problem is not None:
        with instance.console_log.open("a") as console:
            console.write(f"kiln: user data was not handed to the instance ({problem})\n")
