"""Fixing the fields qemu-img fills from the clock or from randomness, so a disk export is the same
bytes every time for the same image: the VMDK descriptor's ``CID`` and the VHD footer's timestamp
and unique id (its checksum recomputed). Values are derived from the image's identity and epoch."""

from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path

VHD_FOOTER = 512
VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z, where VHD timestamps count from
_CID = re.compile(rb"\nCID=[0-9a-f]{1,8}\n")  # qemu prints it without leading zeros


def _derived(identity: str, purpose: str, size: int) -> bytes:
    return hashlib.sha256(f"{purpose}:{identity}".encode()).digest()[:size]


def fix_vmdk(path: Path, identity: str) -> None:
    """Set the descriptor's content id (a random 32-bit number) to one derived from ``identity``."""
    with open(path, "r+b") as handle:
        head = handle.read(64 * 1024)  # a monolithicSparse descriptor sits in the first sectors
        match = _CID.search(head)
        if match is None:
            raise ValueError(f"{path}: no VMDK descriptor CID found")
        end = head.index(b"\0", match.end())  # the descriptor text ends at its NUL padding
        text = head[match.start() : end]
        fixed = b"\nCID=" + _derived(identity, "vmdk-cid", 4).hex().encode() + b"\n" + head[match.end() : end]
        room = len(head[end:]) - len(head[end:].lstrip(b"\0"))  # padding after the text
        if len(fixed) > len(text) + room:
            raise ValueError(f"{path}: no room in the VMDK descriptor for its CID")
        handle.seek(match.start())
        handle.write(fixed + b"\0" * max(0, len(text) - len(fixed)))


def _vhd_footer(footer: bytes, identity: str, epoch: int) -> bytes:
    data = bytearray(footer)
    struct.pack_into(">I", data, 24, max(0, epoch - VHD_EPOCH) & 0xFFFFFFFF)  # time stamp
    data[68:84] = _derived(identity, "vhd-uuid", 16)  # unique id
    data[64:68] = b"\0\0\0\0"
    struct.pack_into(">I", data, 64, ~sum(data) & 0xFFFFFFFF)  # checksum: ones' complement of the sum
    return bytes(data)


def fix_vhd(path: Path, identity: str, epoch: int) -> None:
    """Rewrite the footer (at the end, and its copy at the start of a dynamic disk)."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(size - VHD_FOOTER)
        footer = handle.read(VHD_FOOTER)
        if footer[:8] != b"conectix":
            raise ValueError(f"{path}: no VHD footer found")
        fixed = _vhd_footer(footer, identity, epoch)
        handle.seek(size - VHD_FOOTER)
        handle.write(fixed)
        handle.seek(0)
        if handle.read(8) == b"conectix":
            handle.seek(0)
            handle.write(fixed)
