"""The EFI system partition: a FAT32 file system made with dosfstools and filled with mtools, the same
bytes every time (``mkfs.fat --invariant`` with a given volume id; mtools takes its times from
``SOURCE_DATE_EPOCH``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from kiln.errors import SystemRequirement

LABEL = "ESP"


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemRequirement(f"{name} is not installed", hint=f"apt-get install {package}")
    return path


def make_esp(dest: Path, size: int, *, volume_id: str, epoch: int, files: dict[str, bytes], scratch: Path) -> None:
    """A FAT32 image of ``size`` bytes at ``dest`` holding ``files`` (ESP path -> content)."""
    with open(dest, "wb") as handle:
        handle.truncate(size)
    subprocess.run([_tool("mkfs.fat", "dosfstools"), "--invariant", "-F", "32", "-s", "1", "-i", volume_id,
                    "-n", LABEL, str(dest)], check=True, capture_output=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "MTOOLS_SKIP_CHECK": "1"}
    mmd, mcopy = _tool("mmd", "mtools"), _tool("mcopy", "mtools")
    made: set[str] = set()
    for index, (path, data) in enumerate(sorted(files.items())):
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in made:
                subprocess.run([mmd, "-i", str(dest), f"::/{directory}"], check=True, capture_output=True, env=env)
                made.add(directory)
        source = scratch / f"esp-file-{index}"
        source.write_bytes(data)
        os.utime(source, (epoch, epoch))
        subprocess.run([mcopy, "-m", "-i", str(dest), str(source), f"::/{path.strip('/')}"], check=True,
                       capture_output=True, env=env)
