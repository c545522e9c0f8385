"""KVM's own failure, remembered for the rest of the host's boot.

When QEMU under KVM dies before a guest gets anywhere (a nested hypervisor refusing an MSR, KVM that
cannot start), every guest on this host fails the same way until the host boots again: the answer is
kept once, in ``/run/kiln/`` (a tmpfs every ``KILN_HOME`` on the host shares, emptied at boot), keyed by
the host's boot id and the QEMU binary (another QEMU may fare differently), so later disks start under
TCG at once instead of each paying a probe boot. ``KILN_KVM_MEMO`` names another directory, or ``off``
to probe every disk again. Where the directory cannot be written, nothing is kept here and the
per-disk answer (``kiln.runtime.vm.choose_accel``) does the job, as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from kiln.files import write_atomic
from kiln.runtime import procs
from kiln.runtime.qemu import Accel, qemu_binary

MEMO_VARIABLE = "KILN_KVM_MEMO"
DEFAULT_DIRECTORY = Path("/run/kiln")
PREFIX = "kvm-failed-"


def _directory() -> Path | None:
    configured = os.environ.get(MEMO_VARIABLE, "").strip()
    if configured.lower() == "off":
        return None
    return Path(configured) if configured else DEFAULT_DIRECTORY


def binary_key() -> str:
    """The QEMU binary kiln runs: its real path and the file itself (an upgrade is another binary)."""
    path = os.path.realpath(qemu_binary())
    stat = os.stat(path)
    return hashlib.sha256(f"{path}\0{stat.st_ino}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def memo_path() -> Path | None:
    """Where this boot's answer for this QEMU is kept; None when nothing is kept (``off``, no boot id)."""
    directory, boot = _directory(), procs.boot_id()
    if directory is None or boot is None:
        return None
    return directory / f"{PREFIX}{boot}-{binary_key()}.json"


def remembered() -> Accel | None:
    """TCG, when KVM failed on this host earlier in this boot (the reason says so); else None."""
    path = memo_path()
    if path is None:
        return None
    try:
        if path.stat().st_uid not in (0, os.geteuid()):  # only kiln's own answer (root's or this user's) counts
            return None
        known = json.loads(path.read_text())
        reason, disk, at = str(known["reason"]), str(known["disk"]), str(known["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Accel("tcg", f"KVM failed an earlier probe on this boot of the host ({at}, disk {disk}), "
                        f"so no probe again until the host reboots: {reason}")


def remember(failure: Accel, disk: Path) -> bool:
    """Keep ``failure`` (KVM's own) for the rest of this boot; False when it cannot be kept here."""
    path = memo_path()
    if path is None:
        return False
    answer = {"name": failure.name, "reason": failure.reason, "disk": str(disk), "boot_id": procs.boot_id(),
              "qemu": os.path.realpath(qemu_binary()), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        write_atomic(path, json.dumps(answer))
    except OSError:
        return False
    for stale in path.parent.glob(f"{PREFIX}*.json"):  # earlier boots' answers (a directory that outlives boots)
        if not stale.name.startswith(f"{PREFIX}{answer['boot_id']}-"):
            stale.unlink(missing_ok=True)
    return True
