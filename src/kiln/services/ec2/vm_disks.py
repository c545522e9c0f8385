"""The bootable disk a VM instance's root volume is an overlay of: the AMI exported as qcow2 once and
kept in ``KILN_HOME/cache/vm-disks/`` under a key made of the AMI's layer digests, size and boot
mode (the same layers give the same disk, so AMIs sharing them share it).

The cache is trimmed (:func:`trim`) after a disk is added and after a VM is terminated: a disk no
registered AMI maps to any more (each disk's ``.amis`` file lists the AMIs that used it) goes, then
the least recently used until the cache is within ``KILN_VM_DISK_CACHE_LIMIT`` (bytes, or with a K,
M, G or T suffix; default 20G). A disk that is the backing file of an instance not terminated, or of a
root volume kept after one, is never removed, nor one used in the last minute (a launch between
choosing its disk and recording its instance)."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from kiln.ec2_errors import InvalidParameterValue
from kiln.errors import InvalidInput, KilnError
from kiln.home import cache_dir, kiln_home
from kiln.runtime import vm_disk
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
    limit = cache_limit()  # a bad setting refused before anything is made
    if image.boot.boot_mode is None:
        raise InvalidParameterValue(
            f"The image {image.id} is not bootable: it has no kernel, so it cannot run as a VM "
            "(build it with the kiln-bootable-linux component, or launch it without --vm)",
            location="ImageId",
        )
    directory = cache_dir() / "vm-disks"
    disk = directory / f"{disk_key(image, region, size, digests)}.qcow2"
    if disk.is_file():
        _used(disk, image.id, region)
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
    _used(disk, image.id, region)
    trim(limit)
    return disk


LIMIT_VARIABLE = "KILN_VM_DISK_CACHE_LIMIT"
DEFAULT_LIMIT = 20 << 30
RECENT_SECONDS = 60.0
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _used(disk: Path, image_id: str, region: str) -> None:
    """Mark ``disk`` used now (its mtime: the LRU order) by ``image_id``."""
    amis = disk.with_suffix(".amis")
    line = f"{region} {image_id}"
    try:
        known = amis.read_text().splitlines()
    except FileNotFoundError:
        known = []
    if line not in known:
        with open(amis, "a") as out:
            out.write(line + "\n")
    os.utime(disk)


def cache_limit() -> int:
    raw = os.environ.get(LIMIT_VARIABLE, "").strip().upper().removesuffix("B").removesuffix("I")
    if not raw:
        return DEFAULT_LIMIT
    number, unit = (raw[:-1], raw[-1]) if raw[-1] in _UNITS else (raw, "")
    if not number.isdigit():
        raise InvalidInput(f"{LIMIT_VARIABLE} must be a number of bytes, optionally with K, M, G or T "
                           f"(got {os.environ[LIMIT_VARIABLE]!r})", location=LIMIT_VARIABLE)
    return int(number) * _UNITS[unit]


def _files_of(disk: Path) -> list[Path]:
    """The disk and what is kept beside it (empty overlays, the accelerator answer, its AMIs)."""
    extras = [disk.with_name(disk.name + ".accel.json"), disk.with_suffix(".amis")]
    return [disk, *vm_disk.overlay_templates(disk), *[path for path in extras if path.exists()]]


def _size(disk: Path) -> int:
    return sum(path.stat().st_blocks * 512 for path in _files_of(disk) if path.exists())


def _in_use() -> set[Path]:
    """Backing disks of instances not terminated and of root volumes kept after termination."""
    from kiln.runtime import instances
    from kiln.runtime.teardown import LIVE_STATES

    used = {Path(i.vm["backing"]).resolve() for i in instances.list_instances(states=LIVE_STATES) if i.vm}
    for kept in (kiln_home() / "volumes").glob("*.qcow2"):
        backing = vm_disk.backing_file(kept)
        if backing is not None:
            used.add(Path(backing).resolve())
    return used


def _registered(disk: Path) -> bool:
    """Whether an AMI that used ``disk`` is still registered."""
    try:
        lines = disk.with_suffix(".amis").read_text().splitlines()
    except FileNotFoundError:
        return True  # cached before AMIs were noted: LRU decides
    for line in lines:
        region, _, image_id = line.partition(" ")
        try:
            if api.get_image(image_id, region).state != "deregistered":
                return True
        except KilnError:
            continue
    return False


def trim(limit: int | None = None) -> list[Path]:
    """Remove cached disks as the module says; returns the disks removed."""
    limit = cache_limit() if limit is None else limit
    directory = cache_dir() / "vm-disks"
    disks = [d for d in directory.glob("*.qcow2") if ".overlay-" not in d.name]
    if not disks:
        return []
    in_use, now = _in_use(), time.time()
    removable = [d for d in disks if d.resolve() not in in_use and now - d.stat().st_mtime > RECENT_SECONDS]
    evicted = [d for d in removable if not _registered(d)]
    total = sum(_size(d) for d in disks if d not in evicted)
    for disk in sorted((d for d in removable if d not in evicted), key=lambda d: d.stat().st_mtime):
        if total <= limit:
            break
        total -= _size(disk)
        evicted.append(disk)
    for disk in evicted:
        for path in _files_of(disk):
            path.unlink(missing_ok=True)
        shutil.rmtree(disk.with_name(disk.name + ".probe"), ignore_errors=True)
    return evicted
