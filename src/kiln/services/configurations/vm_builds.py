"""The infrastructure configuration setting that runs a build's instances as VMs: the resource tag
``kiln:vm`` (``resourceTags`` of the configuration: the tags of the instances a build launches) with
the value ``true``. It is the instance tag with which RunInstances asks for a VM
(``kiln.services.ec2.instances.VM_TAG``), so a build and test instance is a VM exactly when it carries
it; any other value than ``true`` or ``false`` is refused when the configuration is written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kiln.errors import InvalidInput

VM_RESOURCE_TAG = "kiln:vm"  # the same key as kiln.services.ec2.instances.VM_TAG
VALUES = ("true", "false")


def check_vm_setting(body: Mapping[str, Any]) -> None:
    """InvalidInput naming ``resourceTags.kiln:vm`` when its value is neither true nor false."""
    value = (body.get("resourceTags") or {}).get(VM_RESOURCE_TAG)
    if value is not None and str(value).lower() not in VALUES:
        raise InvalidInput(f"{VM_RESOURCE_TAG} must be true (build and test instances are VMs) or false, "
                           f"not {value!r}", location=f"resourceTags.{VM_RESOURCE_TAG}")


def builds_in_vms(infrastructure: Mapping[str, Any]) -> bool:
    """Whether the configuration's build and test instances are VMs."""
    return str((infrastructure.get("resourceTags") or {}).get(VM_RESOURCE_TAG, "")).lower() == "true"
