"""A VM instance's root volume: a qcow2 overlay whose backing file is the AMI's exported disk, so the
instance writes only what it changes (copy-on-write) and the AMI's disk is shared by every instance.

``qemu-img create`` runs once per backing disk and size: the empty overlay it makes is kept beside the
disk (``<disk>.overlay-<size>.qcow2``, nothing in it is per instance) and every root volume after
the first is a copy of it."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

from kiln.errors import InvalidInput, SystemRequirement
from kiln.files import staged_path

QCOW2_MAGIC = b"QFI\xfb"


def _qemu_img(*args: str) -> str:
    try:
        done = subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SystemRequirement("qemu-img is not installed", hint="apt-get install qemu-utils") from None
    if done.returncode != 0:
        raise SystemRequirement(f"qemu-img {args[0]} failed: {done.stderr.strip()[:500]}")
    return done.stdout


def info(disk: Path) -> dict[str, object]:
    """``qemu-img info`` of ``disk`` (format, virtual-size, backing-filename …)."""
    return dict(json.loads(_qemu_img("info", "--output=json", "-U", str(disk))))


def virtual_size(disk: Path) -> int:
    """The disk's size in bytes as its guest sees it: from a qcow2's header, else ``qemu-img info``."""
    with open(disk, "rb") as handle:
        header = handle.read(32)
    if len(header) == 32 and header[:4] == QCOW2_MAGIC:
        return int(struct.unpack_from(">Q", header, 24)[0])
    return int(info(disk)["virtual-size"])  # type: ignore[call-overload]


def backing_file(disk: Path) -> str | None:
    """The backing file a qcow2 names in its header (None: none, or not a qcow2)."""
    try:
        with open(disk, "rb") as handle:
            header = handle.read(20)
            if len(header) < 20 or header[:4] != QCOW2_MAGIC:
                return None
            offset, size = struct.unpack_from(">QI", header, 8)
            if not offset or not size:
                return None
            handle.seek(offset)
            return handle.read(size).decode("utf-8", "surrogateescape")
    except OSError:
        return None


def overlay_templates(backing: Path) -> list[Path]:
    """The empty overlays kept for ``backing`` (removed with it)."""
    return sorted(backing.parent.glob(f"{backing.name}.overlay-*.qcow2"))


def _template(backing: Path, size: int) -> Path:
    template = backing.with_name(f"{backing.name}.overlay-{size}.qcow2")
    if not template.is_file():
        with staged_path(template) as partial:
            _qemu_img("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(backing.resolve()), str(partial),
                      str(size))
    return template


def create_overlay(backing: Path, overlay: Path, *, size: int | None = None) -> Path:
    """A qcow2 at ``overlay`` over ``backing`` (a qcow2), ``size`` bytes (default: the backing disk's)."""
    backing_size = virtual_size(backing)
    if size is not None and size < backing_size:
        raise InvalidInput(
            f"the root volume ({size >> 30} GiB) is smaller than the image's disk ({backing_size / (1 << 30):g} GiB)",
            location="VolumeSize",
        )
    shutil.copyfile(_template(backing, size or backing_size), overlay)
    return overlay
