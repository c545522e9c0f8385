"""An AMI's SBOMs as OCI referrers of its manifest: made on request, written by every build as soon as
its image exists, and made for a copy (CopyImage, a build's distribution) when its source has them.

An SBOM describes one AMI (its id, region, name, manifest digest and creation date), so a copy's SBOMs
are the copy's own: the same packages (the same layers), its own subject. Same AMI, same bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
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


class _Inventories:
    """The last few inventories read, by the layer digests they were read from: layers are content
    addressed, so the same digests hold the same packages — a build's distribution reads its output's
    inventory once, not once more per copy (every copy has its source's layers)."""

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._known: OrderedDict[tuple[str, ...], Inventory] = OrderedDict()

    def get(self, key: tuple[str, ...]) -> Inventory | None:
        with self._lock:
            if key in self._known:
                self._known.move_to_end(key)
            return self._known.get(key)

    def put(self, key: tuple[str, ...], inventory: Inventory) -> None:
        with self._lock:
            self._known[key] = inventory
            self._known.move_to_end(key)
            while len(self._known) > self._size:
                self._known.popitem(last=False)


_INVENTORIES = _Inventories()


def _inventory(ami_id: str, region: str, layers: Sequence[Path] | None) -> Inventory:
    try:
        key = tuple(layer.digest for layer in store.image_layers(ami_id, region))
    except InvalidInput:  # no root snapshot: nothing to key on, read as before
        key = ()
    inventory = _INVENTORIES.get(key) if key else None
    if inventory is None:
        inventory = read_inventory(layers, ami_id) if layers is not None else store.image_inventory(ami_id, region)
        if key:
            _INVENTORIES.put(key, inventory)
    return inventory


def write_sboms(ami_id: str, region: str, layers: Sequence[Path] | None = None) -> list[str]:
    """Both SBOMs of the AMI stored as its referrers; the artifact types written. ``layers`` (base
    first) are the AMI's content when the caller has it unpacked already (a build's stopped instance:
    its layers and root volume, what the AMI's top layer was captured from); else the AMI's layers.
    An image without a package database gets none ([]): there is nothing to describe."""
    info = store.get_image(ami_id, region)
    try:
        inventory = _inventory(ami_id, region, layers)
    except NoPackageDatabase:
        return []
    artifacts = [(kind, sbom_of(fmt, info, region, inventory)) for fmt, (kind, _) in FORMATS.items()]
    store.attach_artifacts(ami_id, artifacts, region)
    return [kind for kind, _ in artifacts]


def has_sboms(ami_id: str, region: str) -> bool:
    return bool(store.referrer_types(ami_id, region) & SBOM_TYPES)


def carry_sboms(source_ami: str, source_region: str, copy_ami: str, region: str) -> list[str]:
    """The copy's SBOMs when its source has some (its layers are its source's, unpacked once per host)."""
    if not has_sboms(source_ami, source_region):
        return []
    return write_sboms(copy_ami, region)
