"""The bootable disk a VM instance's root volume is an overlay of: the AMI exported as qcow2 once and
kept in ``KILN_HOME/cache/vm-disks/`` under a key made of the AMI's layer digests, size and boot
mode (the same layers give the same disk, so AMIs sharing them share it)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from kiln.ec2_errors import InvalidParameterValue
from kiln.home import cache_dir
from kiln.store import api
from kiln.store.disk_image import DEFAULT_SIZE
from kiln.store.images import ImageInfo


def disk_key(image: ImageInfo, region: str, size: int, digests: Sequence[str] | None = None) -> str:
    """``digests``: the AMI's layer digests when the caller has them (else read)."""
    if digests is None:
        digests = [layer.digest for layer in api.image_layers(image.id, region)]
    text = "\n".join([*digests, str(size), image.boot.boot_mode or ""])
    return hashlib.sha256(text.encode()).hexdigest()


def bootable_disk(image: ImageInfo, region: str, digests: Sequence[str] | None = None) -> Path:
    """The AMI's bootable qcow2 disk, as large as its root volume (exported now unless cached);
    InvalidParameterValue for an AMI without a kernel."""
    size = image.volume_size << 30 if image.volume_size else DEFAULT_SIZE
    if image.boot.boot_mode is None:
        raise InvalidParameterValue(
            f"The image {image.id} is not bootable: it has no kernel, so it cannot run as a VM "
            "(build it with the kiln-bootable-linux component, or launch it without --vm)",
            location="ImageId",
        )
    directory = cache_dir() / "vm-disks"
    disk = directory / f"{disk_key(image, region, size, digests)}.qcow2"
    if disk.is_file():
        return disk
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f"{disk.stem}.{os.getpid()}.partial"
    partial.mkdir(exist_ok=True)
    try:
        exported = api.export_image_detailed(image.id, "qcow2", partial / "disk.qcow2", region, size=size)
        if not exported.bootable:
            raise InvalidParameterValue(f"The image {image.id} is not bootable: {exported.note}", location="ImageId")
        os.replace(exported.path, disk)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return disk
