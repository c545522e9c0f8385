"""``kiln image sbom``: an image's SBOM (SPDX 2.3 or CycloneDX 1.6 JSON), stored beside it as an OCI
referrer (artifactType ``application/spdx+json`` / ``application/vnd.cyclonedx+json``) whose subject is
its manifest. The same image always gives the same bytes, so a stored SBOM is answered as is (builds
store both as soon as their image exists: ``kiln.services.inventory.artifacts``)."""

from __future__ import annotations

from kiln.home import DEFAULT_ACCOUNT
from kiln.services.ec2.callers import principal
from kiln.services.inventory.artifacts import FORMATS, artifact_type, sbom_of
from kiln.services.inventory.images import resolve_ami
from kiln.store import api as store

__all__ = ["FORMATS", "artifact_type", "image_sbom", "sbom_referrers"]


def image_sbom(resource: str, fmt: str, region: str, account: str = DEFAULT_ACCOUNT) -> tuple[str, bytes]:
    """(the AMI id, the SBOM's bytes) for an AMI id or image build ARN, stored as the AMI's referrer."""
    kind = artifact_type(fmt)
    info = resolve_ami(resource, region, account)
    stored = store.read_artifact(info.id, kind, region)
    if stored is not None:
        return info.id, stored
    inventory = store.image_inventory(info.id, region, principal(account))
    data = sbom_of(fmt, info, region, inventory)
    store.attach_artifact(info.id, kind, data, region)
    return info.id, data


def sbom_referrers(resource: str, region: str, account: str = DEFAULT_ACCOUNT) -> list[dict[str, object]]:
    """The SBOM artifacts stored beside the image (the referrers API's descriptors)."""
    info = resolve_ami(resource, region, account)
    return store.image_referrers(info.id, region)
