"""A raw ext4 disk image of a tree that is the same bytes every time for the same tree.

``mkfs.ext4 -d`` would put the clock into the image (superblock and inode times), a random filesystem
UUID and a random directory hash seed, and copies every file's ctime — which the kernel set when the
tree was written out, so it differs on each export. Here the UUID and the hash seed are derived from
``identity`` (the image's manifest digest), every time e2fsprogs would take from the clock is
``epoch`` (``E2FSPROGS_FAKE_TIME``), and after mkfs every inode's ctime and atime (reading the tree
moves atimes) are set to ``epoch`` with debugfs. Inodes are reached by number, in a breadth-first walk
of the image's own directories, so no file name needs quoting.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path

LABEL = "kiln-root"
DEBUGFS_BATCH = 5000  # commands per debugfs run (its input is read line by line)


def derived_uuid(identity: str, purpose: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(f"{purpose}:{identity}".encode()).digest()[:16], version=4))


def tree_epoch(tree: Path) -> int:
    """The newest modification time in the tree (whole seconds): a time the content itself carries.

    At least 1: e2fsprogs reads ``E2FSPROGS_FAKE_TIME=0`` as unset and stamps the clock's time instead."""
    newest = 1
    for directory, names, files in os.walk(tree):
        for name in (*names, *files):
            newest = max(newest, int(os.lstat(os.path.join(directory, name)).st_mtime))
    return newest


def _debugfs(debugfs: str, image: Path, commands: Iterable[str], env: dict[str, str], *, write: bool) -> str:
    text = "".join(f"{command}\n" for command in commands)
    argv = [debugfs, *(["-w"] if write else []), "-f", "-", str(image)]
    result = subprocess.run(  # names need not be UTF-8: kept as they are
        argv, input=text, capture_output=True, encoding="utf-8", errors="surrogateescape", env=env, check=True
    )
    return result.stdout


def _inodes(debugfs: str, image: Path, env: dict[str, str]) -> list[int]:
    """Every inode reachable from the root, by walking directories with ``ls -p <ino>``."""
    seen = [2]
    seen_set = {2}
    level = [2]
    while level:
        following: list[int] = []
        for start in range(0, len(level), DEBUGFS_BATCH):
            batch = level[start : start + DEBUGFS_BATCH]
            output = _debugfs(debugfs, image, (f"ls -p <{ino}>" for ino in batch), env, write=False)
            for line in output.splitlines():
                # /inode/mode/uid/gid/name/size/  (mode in octal; 04xxxx is a directory)
                fields = line.split("/")
                if len(fields) < 7 or not fields[1].isdigit():
                    continue
                ino, mode, name = int(fields[1]), fields[2], "/".join(fields[5:-2])
                if name in (".", "..") or ino in seen_set:
                    continue
                seen_set.add(ino)
                seen.append(ino)
                if mode.startswith("04"):
                    following.append(ino)
        level = following
    return seen


def make_ext4(mkfs: str, debugfs: str, tree: Path, dest: Path, size: int, *, identity: str, epoch: int) -> None:
    env = {**os.environ, "E2FSPROGS_FAKE_TIME": str(epoch)}
    with open(dest, "wb") as handle:
        handle.truncate(size)
    subprocess.run(
        [
            mkfs, "-q", "-F", "-L", LABEL, "-U", derived_uuid(identity, "fs-uuid"),
            "-E", f"hash_seed={derived_uuid(identity, 'hash-seed')}", "-d", str(tree), str(dest),
        ],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    inodes = _inodes(debugfs, dest, env)
    for start in range(0, len(inodes), DEBUGFS_BATCH):
        batch = inodes[start : start + DEBUGFS_BATCH]
        commands = (f"set_inode_field <{ino}> {field} @{epoch}" for ino in batch for field in ("atime", "ctime"))
        _debugfs(debugfs, dest, commands, env, write=True)
