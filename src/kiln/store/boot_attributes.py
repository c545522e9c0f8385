"""EC2's boot attributes of an AMI (``BootMode``, ``EnaSupport``, ``ImdsSupport``, ``TpmSupport``), read
from its files when it is registered: an image with a kernel boots in the mode its kiln-bootable-linux
component chose; one without a kernel has no boot mode. A child image keeps its parent's attributes
unless its own layer brings a kernel (EC2: an image made from an instance keeps the AMI's)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kiln.errors import InvalidInput
from kiln.store.disk_image import find_boot_files

CLOUD_INIT = "usr/bin/cloud-init"


@dataclass(frozen=True)
class BootAttributes:
    boot_mode: str | None = None
    ena_support: bool | None = None
    imds_support: str | None = None  # "v2.0": instances get HttpTokens=required
    tpm_support: str | None = None  # "v2.0": NitroTPM; kiln's VMs have no TPM, so never set here


def boot_attributes_of(tree: Path) -> BootAttributes | None:
    """The attributes a tree (or an overlay upper dir) gives, or None when it has no kernel."""
    try:
        boot = find_boot_files(tree)
    except InvalidInput:  # an unknown mode in /etc/kiln/boot-mode: the export names the file
        return BootAttributes(ena_support=True) if any((tree / "boot").glob("vmlinuz-*")) else None
    if boot is None:
        return None
    # Debian's kernels carry the ENA driver; cloud-init speaks IMDSv2 (token first)
    imds = "v2.0" if (tree / CLOUD_INIT).exists() else None
    return BootAttributes(boot_mode=boot.boot_mode, ena_support=True, imds_support=imds)
