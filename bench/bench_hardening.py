"""Bounded costs on hostile-sized input, measured side by side in one run.

(a) capturing a step that prints 1 GB to stdout (``kiln.documents.process_output``, through the host
    executor a build step uses) vs ``cat`` of the same stream to /dev/null: throughput (goal >= 200 MB/s)
    and peak memory of the capturing process (goal: flat, the same as before the flood);
(b) ``kiln image import`` of a tar of 1,000,000 entries (empty files in 1,000 dirs: the per-entry cost)
    vs ``tar -x`` of it: time (goal < 60 s) and peak memory (goal < 300 MiB). Both write into a tmpfs
    (about 1 GiB of RAM for a million inodes): on this machine's disk, creating and deleting a million
    files takes minutes whoever does it.

Each measurement runs in its own child process, which reports its VmHWM (/proc/self/status).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOD_BYTES = 1_000_000_000
ENTRIES = 1_000_000
DIRS = 1000
LINE = "x" * 79  # 80 bytes a line with its newline

_FLOOD_CHILD = r"""
import json, sys, time
from kiln.documents.host import HostExecutor

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

log = open("/dev/null", "w")
before = hwm()
started = time.perf_counter()
result = HostExecutor().run(["sh", "-c", sys.argv[1]], on_stdout=log.write)
elapsed = time.perf_counter() - started
assert result.exit_code == 0
print(json.dumps({"seconds": elapsed, "hwm_before": before, "hwm_after": hwm(), "kept": len(result.stdout)}))
"""


def _flood(command: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _FLOOD_CHILD, command], env=_child_env(), capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _seconds(command: str) -> float:
    started = time.perf_counter()
    subprocess.run(["sh", "-c", command], check=True)
    return time.perf_counter() - started


def bench_flood() -> dict[str, float]:
    streams = {
        "lines": f"yes {LINE} | head -c {FLOOD_BYTES}",
        "no_newline": f"head -c {FLOOD_BYTES} /dev/zero | tr '\\0' x",
    }
    result: dict[str, float] = {}
    for name, command in streams.items():
        baseline = min(_seconds(f"{command} | cat > /dev/null") for _ in range(2))
        kiln = _flood(command)
        result[f"flood_{name}_kiln_mb_s"] = round(FLOOD_BYTES / 1e6 / kiln["seconds"], 1)
        result[f"flood_{name}_cat_mb_s"] = round(FLOOD_BYTES / 1e6 / baseline, 1)
        result[f"flood_{name}_ratio"] = round(kiln["seconds"] / baseline, 2)
        result[f"flood_{name}_peak_mib_before"] = round(kiln["hwm_before"] / 2**20, 1)
        result[f"flood_{name}_peak_mib_after"] = round(kiln["hwm_after"] / 2**20, 1)
    result["flood_goal_mb_s"] = 200
    return result


def _write_tar(path: Path) -> None:
    """1,000,000 entries: DIRS directories of small files, written as raw ustar headers (fast)."""
    import tarfile

    from kiln.store.layers import _ustar_block

    per_dir = ENTRIES // DIRS - 1
    with open(path, "wb") as out:
        for d in range(DIRS):
            block = [_ustar_block(f"d{d:04d}/".encode(), 0o755, 0, 0, 0, 1_700_000_000, tarfile.DIRTYPE, b"")]
            for f in range(per_dir):
                name = f"d{d:04d}/file-{f:04d}.txt".encode()
                block.append(_ustar_block(name, 0o644, 0, 0, 0, 1_700_000_000, tarfile.REGTYPE, b""))
            out.write(b"".join(block))
        out.write(b"\0" * tarfile.RECORDSIZE)


_IMPORT_CHILD = r"""
import json, os, sys, time
from kiln.store import api

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

started = time.perf_counter()
ami = api.import_rootfs(sys.argv[1], name="bench-million")
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "hwm": hwm(), "ami": ami}))
"""


def _seconds_and_peak(argv: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (the waited child's ru_maxrss) of a command."""
    started = time.perf_counter()
    process = subprocess.Popen(argv)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed with {process.returncode}")
    return elapsed, usage.ru_maxrss * 1024


def _child_env(**extra: str) -> dict[str, str]:
    """The children import this checkout's kiln, whatever the environment has installed."""
    src = str(Path(__file__).resolve().parent.parent / "src")
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{src}:{path}" if path else src, **extra}


def bench_million(work: Path) -> dict[str, float]:
    archive = work / "million.tar"
    _write_tar(archive)
    target = work / "tar-x"
    target.mkdir()
    tar_seconds, tar_hwm = _seconds_and_peak(["tar", "-C", str(target), "-xf", str(archive)])
    subprocess.run(["rm", "-rf", str(target)], check=True)
    env = _child_env(KILN_HOME=str(work / "home"))
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_CHILD, str(archive)], env=env, capture_output=True, text=True, check=True
    )
    kiln = json.loads(done.stdout)
    return {
        "million_entries": ENTRIES,
        "million_tar_mb": round(archive.stat().st_size / 1e6, 1),
        "million_kiln_import_s": round(kiln["seconds"], 1),
        "million_tar_x_s": round(tar_seconds, 1),
        "million_ratio": round(kiln["seconds"] / tar_seconds, 2),
        "million_kiln_peak_mib": round(kiln["hwm"] / 2**20, 1),
        "million_tar_x_peak_mib": round(tar_hwm / 2**20, 1),
        "million_goal_s": 60,
        "million_goal_peak_mib": 300,
    }


def _ram() -> str | None:
    return "/dev/shm" if os.path.ismount("/dev/shm") else None


def run() -> dict[str, float]:
    result = bench_flood()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-hardening-", dir=_ram()) as tmp:
        result.update(bench_million(Path(tmp)))
    return result


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
