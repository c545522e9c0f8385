"""A VM instance's root volume: a qcow2 overlay whose backing file is the AMI's exported disk, so the
instance writes only what it changes (copy-on-write) and the AMI's disk is shared by every instance."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from kiln.errors import InvalidInput, SystemRequirement


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


def create_overlay(backing: Path, overlay: Path, *, size: int | None = None) -> Path:
    """A qcow2 at ``overlay`` over ``backing`` (a qcow2), ``size`` bytes (default: the backing disk's)."""
    backing_size = int(info(backing)["virtual-size"])  # type: ignore[call-overload]
    if size is not None and size < backing_size:
        raise InvalidInput(
            f"the root volume ({size >> 30} GiB) is smaller than the image's disk ({backing_size / (1 << 30):g} GiB)",
            location="VolumeSize",
        )
    args = ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(backing.resolve()), str(overlay)]
    if size is not None:
        args.append(str(size))
    _qemu_img(*args)
    return overlay
