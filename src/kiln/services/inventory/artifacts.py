"""An AMI's SBOMs as OCI referrers of its manifest: made on request, written by every build as soon as
its image exists, and made for a copy (CopyImage, a build's distribution) when its source has them.

An SBOM describes one AMI (its id, region, name, manifest digest and creation date), so a copy's SBOMs
are the copy's own: the same packages (the same layers), its own subject. Same AMI, same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from kiln.errors import InvalidInput
from kiln.services.inventory.sbom_cyclonedx import cyclonedx_json
from kiln.services.inventory.sbom_spdx import spdx_json
from kiln.services.inventory.subject import SbomSubject
from kiln.store import api as store
from kiln.store.images import ImageInfo
from kiln.store.package_db import Inventory, NoPackageDatabase, read_inventory

FORMATS: dict[str, tuple[str, Callable[[SbomSubject], bytes]]] = {
    "spdx-json": ("application/spdx+json", spdx_json),
    "cyclonedx-json": ("application/vnd.cyclonedx+json", cyclonedx_json),
}
SBOM_TYPES = frozenset(kind for kind, _ in FORMATS.values())


def artifact_type(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown SBOM format {fmt!r} (spdx-json or cyclonedx-json)", location="--format")
    return FORMATS[fmt][0]


def subject_of(info: ImageInfo, region: str, inventory: Inventory) -> SbomSubject:
    return SbomSubject(info.id, info.name, region, info.architecture, info.manifest_digest or "",
                       info.creation_date, inventory)


def sbom_of(fmt: str, info: ImageInfo, region: str, inventory: Inventory) -> bytes:
    return FORMATS[fmt][1](subject_of(info, region, inventory))


def write_sboms(ami_id: str, region: str, layers: Sequence[Path] | None = None) -> list[str]:
    """Both SBOMs of the AMI stored as its referrers; the artifact types written. ``layers`` (base
    first) are the AMI's content when the caller has it unpacked already (a build's stopped instance:
    its layers and root volume, what the AMI's top layer was captured from); else the AMI's layers.
    An image without a package database gets none ([]): there is nothing to describe."""
    info = store.get_image(ami_id, region)
    try:
        inventory = read_inventory(layers, ami_id) if layers is not None else store.image_inventory(ami_id, region)
    except NoPackageDatabase:
        return []
    written = []
    for fmt, (kind, _) in FORMATS.items():
        store.attach_artifact(ami_id, kind, sbom_of(fmt, info, region, inventory), region)
        written.append(kind)
    return written


def has_sboms(ami_id: str, region: str) -> bool:
    if not store.get_image(ami_id, region).manifest_digest:  # an AMI without an OCI manifest has no referrers
        return False
    return any(r.get("artifactType") in SBOM_TYPES for r in store.image_referrers(ami_id, region))


def carry_sboms(source_ami: str, source_region: str, copy_ami: str, region: str) -> list[str]:
    """The copy's SBOMs when its source has some (its layers are its source's, unpacked once per host)."""
    if not has_sboms(source_ami, source_region):
        return []
    return write_sboms(copy_ami, region)
