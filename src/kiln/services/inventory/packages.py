"""``kiln image packages``: an image's installed packages, full records or ListImagePackages' shape."""

from __future__ import annotations

from typing import Any

from kiln.home import DEFAULT_ACCOUNT
from kiln.services.builds import records
from kiln.services.ec2.callers import principal
from kiln.services.inventory.images import resolve_ami
from kiln.store import api as store


def image_packages(resource: str, region: str, account: str = DEFAULT_ACCOUNT) -> list[dict[str, Any]]:
    """The installed packages of an AMI (read from its layers) or of an image build (as its inventory
    step recorded them; a build whose record predates full records is read from its AMI)."""
    if not resource.startswith("ami-"):
        recorded = records.package_records(resource, caller=account, region=region)
        if all("name" in record for record in recorded) or not recorded:
            return recorded
    ami = resolve_ami(resource, region, account)
    return [package.as_json() for package in store.image_inventory(ami.id, region, principal(account)).packages]


def list_image_packages(resource: str, region: str, account: str = DEFAULT_ACCOUNT) -> list[dict[str, str]]:
    """ListImagePackages' ``imagePackageList`` for an image build ARN or an AMI id."""
    if not resource.startswith("ami-"):
        return records.packages(resource, caller=account, region=region)
    return [{"packageName": p["name"], "packageVersion": p["version"]}
            for p in image_packages(resource, region, account)]
