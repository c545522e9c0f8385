"""Instances from AMIs: the thin glue between the image store and the runtime.

``runtime/`` launches from layer lists; this module turns an AMI id into its layer list through the
image store (``kiln.store.api``), refuses AMIs that cannot be launched, records the AMI's last
launched time, and turns an instance's root volume back into a new AMI.

The store calls are kept in the three ``_store_*`` functions below so the names can be matched to
the store's API in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from kiln.errors import InvalidInput
from kiln.home import DEFAULT_REGION
from kiln.runtime import instances
from kiln.runtime.instance_types import DEFAULT_INSTANCE_TYPE
from kiln.runtime.records import RUNNING, Instance

LAUNCHABLE_STATES = ("available",)


def _store_image(image_id: str, region: str) -> Any:
    """The AMI's record: needs ``state`` and ``root_device_type``."""
    from kiln.store import api

    return api.get_image(image_id, region)


def _store_layer_dirs(image_id: str, region: str) -> list[Path]:
    from kiln.store import api

    return [Path(p) for p in api.layer_dirs(image_id, region)]


def _store_mark_launched(image_id: str, region: str) -> None:
    from kiln.db.base import utcnow
    from kiln.store import api

    api.set_last_launched(image_id, utcnow(), region=region)


def _field(image: Any, name: str, default: Any = None) -> Any:
    if isinstance(image, Mapping):
        return image.get(name, default)
    return getattr(image, name, default)


def run_instance(
    image_id: str,
    *,
    region: str = DEFAULT_REGION,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    root_device_type: str | None = None,
    network: str = "none",
    tags: Mapping[str, str] | None = None,
    owned: bool = False,
) -> Instance:
    """Launch an instance of AMI ``image_id`` (EC2 ``RunInstances`` for one instance)."""
    image = _store_image(image_id, region)
    state = str(_field(image, "state", "available")).lower()
    if state not in LAUNCHABLE_STATES:
        raise InvalidInput(
            f"image {image_id} is {state} and cannot be launched",
            location="ImageId",
            hint="enable it first" if state == "disabled" else "only available images can be launched",
        )
    lowers = _store_layer_dirs(image_id, region)
    instance = instances.launch(
        lowers,
        image_id=image_id,
        region=region,
        instance_type_name=instance_type,
        root_device_type=root_device_type or _field(image, "root_device_type", None) or "ebs",
        network=network,
        tags=tags,
        owned=owned,
    )
    _store_mark_launched(image_id, region)
    _pin_layers(instance.id, image_id, region)
    return instance


PIN_PREFIX = "instance:"
# An instance's root volume lives on its AMI's layers until it is terminated, however long that is.
PIN_TTL = timedelta(days=36500)


def _pin_layers(instance_id: str, image_id: str, region: str) -> None:
    """Like an EBS volume outliving its AMI: the layers stay while the instance exists, even if the
    AMI is deregistered and its snapshots deleted (gc keeps pinned blobs and unpacked layers)."""
    from kiln.store import api

    digests = [layer.digest for layer in api.image_layers(image_id, region)]
    api.pin(region, digests, PIN_PREFIX + instance_id, PIN_TTL)


def terminate_instance(instance_id: str) -> None:
    """Terminate and let go of the instance's layers at once (recovery would, at the next command)."""
    from kiln.store import api

    instances.terminate(instance_id, force=True)
    api.unpin_holder(PIN_PREFIX + instance_id)


def release_terminated_pins() -> list[str]:
    """Recovery hook: drop the layer pins of instances that are terminated (or gone)."""
    from kiln.ec2_errors import InvalidInstanceIDNotFound
    from kiln.store import api

    released = []
    for holder in sorted(api.pin_holders(PIN_PREFIX)):
        instance_id = holder.removeprefix(PIN_PREFIX)
        try:
            state = instances.get(instance_id).state
        except InvalidInstanceIDNotFound:
            state = "terminated"
        if state == "terminated":
            api.unpin_holder(holder)
            released.append(instance_id)
    return released


def create_image(
    instance_id: str,
    *,
    name: str,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    no_reboot: bool = False,
) -> str:
    """Capture the instance's root volume as a new AMI (EC2 ``CreateImage``); returns the AMI id.

    As on EC2, a running EBS-backed instance is stopped for the capture and started again, so the
    file system is consistent, unless ``no_reboot``.
    """
    from kiln.store import api

    instance = instances.get(instance_id)
    if instance.image_id is None:
        raise InvalidInput(f"instance {instance_id} was not launched from an image", location="InstanceId")
    if instance.state not in (RUNNING, "stopped"):
        raise InvalidInput(f"instance {instance_id} is {instance.state}", location="InstanceId")
    restart = instance.state == RUNNING and not no_reboot and instance.root_device_type == "ebs"
    if restart:
        instances.stop(instance_id)
    try:
        return str(
            api.create_image_from_upper(
                instance.image_id,
                instance.upper_dir,
                region=instance.region,
                name=name,
                description=description,
                tags=dict(tags or {}),
            )
        )
    finally:
        if restart:
            instances.start(instance_id)
