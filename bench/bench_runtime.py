"""Instance launch latency and footprint, side by side with a bare bubblewrap run.

- launch to first exec: ``instances.launch`` (database row, overlay mount, cgroups, sandbox, ready)
  plus ``exec_in(["true"])``, median of 10 — against ``bwrap --bind ROOT / ... true`` over the same
  busybox tree, interleaved in the same run. Goal: < 250 ms.
- the same for an instance on the network (``network="host"``: its own network namespace, slirp4netns
  started and configured, the prohibit route set), interleaved with the others; the difference of
  the medians is what a network costs at launch.
- disk: bytes added under ``KILN_HOME/instances`` by 20 running instances of one layer set
  (goal: < 1 MB), and the database growth for them.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

RUNS = 10
FLEET = 20


def _busybox_tree(root: Path) -> Path:
    try:  # the image store's builder, when present
        from kiln.store.busybox import busybox_rootfs  # type: ignore[import-not-found]

        return Path(busybox_rootfs(root))
    except ImportError:
        pass
    for name in ("bin", "etc", "root", "tmp", "proc", "dev"):
        (root / name).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in ("sh", "true", "sleep"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    return root


def _disk_usage(path: Path) -> int:
    """Bytes allocated to ``path`` and everything below it, not crossing into mounts."""
    total = os.lstat(path).st_blocks * 512
    for directory, subdirs, files in os.walk(path):
        subdirs[:] = [d for d in subdirs if not os.path.ismount(os.path.join(directory, d))]
        for name in [*subdirs, *files]:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


def _bare_bwrap(root: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["bwrap", "--bind", str(root), "/", "--proc", "/proc", "--dev", "/dev",
         "--perms", "1777", "--tmpfs", "/tmp",
         "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--cap-add", "ALL",
         "/bin/true"],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def run() -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="kiln-bench-runtime-"))
    previous_home = os.environ.get("KILN_HOME")
    os.environ["KILN_HOME"] = str(workdir / "home")
    try:
        from kiln.db.engine import get_engine, reset_engines
        from kiln.home import instances_dir, kiln_home
        from kiln.runtime import instances
        from kiln.runtime.exec import exec_in

        reset_engines()
        get_engine()
        layer = _busybox_tree(workdir / "layer")
        instances.terminate(instances.launch([layer]).id, force=True)  # warm caches and the database

        kiln_launch, networked, bare = [], [], []
        for _ in range(RUNS):
            for network, samples in (("none", kiln_launch), ("host", networked)):
                started = time.perf_counter()
                instance = instances.launch([layer], network=network)
                exec_in(instance.id, ["true"])
                samples.append(time.perf_counter() - started)
                instances.terminate(instance.id, force=True)
            bare.append(_bare_bwrap(layer))

        database = kiln_home() / "kiln.db"
        disk_before = _disk_usage(instances_dir())
        db_before = database.stat().st_size + _wal_size(database)
        fleet = [instances.launch([layer]) for _ in range(FLEET)]
        disk_added = _disk_usage(instances_dir()) - disk_before
        db_added = database.stat().st_size + _wal_size(database) - db_before
        started = time.perf_counter()
        for instance in fleet:
            instances.terminate(instance.id, force=True)
        terminate_each = (time.perf_counter() - started) / FLEET

        launch_ms = statistics.median(kiln_launch) * 1000
        networked_ms = statistics.median(networked) * 1000
        bare_ms = statistics.median(bare) * 1000
        return {
            "launch_to_first_exec_ms_median": round(launch_ms, 1),
            "networked_launch_to_first_exec_ms_median": round(networked_ms, 1),
            "network_extra_ms": round(networked_ms - launch_ms, 1),
            "bare_bwrap_true_ms_median": round(bare_ms, 1),
            "launch_vs_bare_bwrap_ratio": round(launch_ms / bare_ms, 2),
            "launch_goal_ms": 250,
            "launch_goal_met": launch_ms < 250,
            f"disk_added_by_{FLEET}_instances_bytes": disk_added,
            "disk_goal_bytes": 1_000_000,
            "disk_goal_met": disk_added < 1_000_000,
            f"database_growth_for_{FLEET}_instances_bytes": db_added,
            "terminate_ms_each": round(terminate_each * 1000, 1),
        }
    finally:
        from kiln.db.engine import reset_engines
        from kiln.runtime import instances, overlay
        from kiln.runtime.recovery import LIVE_STATES

        for leftover in instances.list_instances(states=LIVE_STATES):
            instances.terminate(leftover.id, force=True)
        reset_engines()
        clean = not overlay.mounts_under(workdir)
        if previous_home is None:
            os.environ.pop("KILN_HOME", None)
        else:
            os.environ["KILN_HOME"] = previous_home
        if clean:
            shutil.rmtree(workdir, ignore_errors=True)


def _wal_size(database: Path) -> int:
    wal = database.with_name(database.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0
