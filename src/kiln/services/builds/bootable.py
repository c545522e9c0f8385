"""The ``kiln-bootable-linux`` component asks for a bootable image: its parent must have a kernel or a
package manager kiln's component installs one with. Checked when the build is planned, before any
instance is launched, so a parent that cannot boot fails the build with one clear error."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from kiln.errors import InvalidInput

BOOTABLE_COMPONENT = "kiln-bootable-linux"
KERNEL_GLOB = "boot/vmlinuz-*"
INSTALLERS = ("usr/bin/apt-get",)


def _whiteout(path: Path) -> bool:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _present(layers: Sequence[Path], pattern: str) -> bool:
    """Whether a file matching ``pattern`` is in the image the layer dirs (overlay form, bottom first) make."""
    decided: dict[str, bool] = {}
    for layer in reversed(layers):
        for match in layer.glob(pattern):
            decided.setdefault(str(match.relative_to(layer)), not _whiteout(match))
    return any(decided.values())


def check_bootable_parent(component_names: Sequence[str], parent_ami: str, layers: Sequence[Path]) -> None:
    """InvalidInput when a recipe lists kiln-bootable-linux over a parent with no kernel and no apt-get."""
    if BOOTABLE_COMPONENT not in component_names:
        return
    if _present(layers, KERNEL_GLOB) or any(_present(layers, path) for path in INSTALLERS):
        return
    index = list(component_names).index(BOOTABLE_COMPONENT)
    raise InvalidInput(
        f"parent image {parent_ami} has no kernel (/{KERNEL_GLOB}) and no apt-get to install one: "
        f"{BOOTABLE_COMPONENT} cannot make it bootable",
        location=f"components[{index}] ({BOOTABLE_COMPONENT})",
    )
