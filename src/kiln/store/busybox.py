"""A tiny busybox root filesystem for tests and demos (from Debian's busybox-static)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from kiln.errors import SystemRequirement

BUSYBOX = Path("/bin/busybox")


def busybox_rootfs(dest: Path) -> Path:
    """Populate ``dest`` with /bin/busybox, its applet symlinks and minimal /etc files."""
    if not BUSYBOX.exists():
        raise SystemRequirement("/bin/busybox is missing", hint="apt-get install busybox-static")
    dest = Path(dest)
    for sub in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "root",
        "tmp",
        "proc",
        "sys",
        "dev",
        "var/tmp",
        "home",
        "run",
    ):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    os.chmod(dest / "root", 0o700)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        link = dest / "bin" / applet
        if applet != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    version = subprocess.run([str(BUSYBOX)], capture_output=True, text=True).stdout.split("\n", 1)[0]
    version_id = version.split()[1].lstrip("v") if len(version.split()) > 1 else "1"
    (dest / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (dest / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (dest / "etc" / "os-release").write_text(
        f'NAME="BusyBox"\nID=busybox\nVERSION_ID="{version_id}"\nPRETTY_NAME="BusyBox {version_id}"\n'
    )
    (dest / "etc" / "hostname").write_text("kiln\n")
    return dest
