"""How many bytes one unpacked layer may occupy.

An imported layer may not expand past the image's root volume (EC2's ``VolumeSize`` of the block
device mapping, 8 GiB when none is given) nor past the free space of ``KILN_HOME`` less a reserve
kept for the store itself. ``KILN_LAYER_SIZE_LIMIT`` (bytes) replaces the volume size; the free
space still bounds it. A layer already in the store was vetted (or captured by kiln) when it got
there: unpacking it again is bounded by the free space alone. Sizes are counted as unpacking writes
them: a file's apparent size (a sparse file is written whole, and exports carry it whole), one
512-byte block per entry, and a hard link's data once, at the file it links to.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any

from kiln.errors import InvalidInput
from kiln.home import cache_dir

GIB = 1 << 30
DEFAULT_VOLUME_GIB = 8  # EC2's default root VolumeSize
FREE_SPACE_RESERVE = 1 * GIB  # left free in KILN_HOME by any unpack
LIMIT_ENV = "KILN_LAYER_SIZE_LIMIT"
ROOT_DEVICE = "/dev/xvda"  # the root device name of kiln's AMIs


@dataclass(frozen=True)
class SizeLimit:
    bytes: int
    reason: str

    def __str__(self) -> str:
        return f"{_human(self.bytes)} ({self.reason})"


def _human(size: int) -> str:
    if size >= GIB and size % GIB == 0:
        return f"{size // GIB} GiB"
    return f"{size} bytes"


def free_space_limit() -> SizeLimit:
    where = cache_dir()  # layers and import scratch dirs are written there, inside KILN_HOME
    where.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(where).free
    reason = f"the free space of KILN_HOME less a {_human(FREE_SPACE_RESERVE)} reserve"
    return SizeLimit(max(0, free - FREE_SPACE_RESERVE), reason)


def _explicit() -> SizeLimit | None:
    value = os.environ.get(LIMIT_ENV)
    if not value:
        return None
    try:
        return SizeLimit(int(value), LIMIT_ENV)
    except ValueError:
        raise InvalidInput(f"{LIMIT_ENV} must be a number of bytes", location=value) from None


def _smaller(first: SizeLimit, second: SizeLimit) -> SizeLimit:
    return first if first.bytes <= second.bytes else second


def root_volume_gib(block_device_mappings: list[dict[str, Any]] | None, root_device: str = ROOT_DEVICE) -> int | None:
    """The root volume's size (GiB) in an image recipe's ``blockDeviceMappings``, if it gives one."""
    for mapping in block_device_mappings or []:
        ebs = mapping.get("ebs") or {}
        if mapping.get("deviceName") == root_device and isinstance(ebs.get("volumeSize"), int):
            return int(ebs["volumeSize"])
    return None


def import_limit(volume_size_gib: int | None = None) -> SizeLimit:
    """The limit of a layer being imported into an image of a ``volume_size_gib`` root volume."""
    bound = _explicit()
    if bound is None:
        size = volume_size_gib or DEFAULT_VOLUME_GIB
        bound = SizeLimit(size * GIB, f"the image's {size} GiB root volume")
    return _smaller(bound, free_space_limit())


def stored_limit() -> SizeLimit:
    """The limit of a layer already in the store, unpacked again."""
    explicit = _explicit()
    free = free_space_limit()
    return free if explicit is None else _smaller(explicit, free)
