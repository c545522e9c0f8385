"""Applying one image layer (overlay form: whiteouts, opaque dirs) to an existing ext4 image with debugfs,
keeping every inode the layer does not touch — and its blocks — where it was.

A child image's disk made this way from its parent's differs from it only where the layer changed
something: new files take free blocks, a file rewritten with the same number of blocks is written over
its own blocks, removed files free theirs (zeroed, so nothing deleted is left in the image). Every time
written is the layer's mtime or ``epoch``; debugfs's own clock is ``epoch`` too.

Whatever this cannot express (a name with a newline, a file system out of space, any debugfs error)
raises :class:`NotIncremental`: the caller builds the disk afresh instead.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT_INO = 2
OVERLAY_XATTRS = "trusted.overlay."
OPAQUE_XATTR = "trusted.overlay.opaque"
BATCH = 5000
_PROMPT = "debugfs: "
_EXTENT = re.compile(r"^\s*\d+/\s*\d+\s+\d+/\s*\d+\s+(\d+)\s*-\s*(\d+)\s+(\d+)\s*-\s*(\d+)\s+(\d+)\s*(.*)$")
_EA_NAME = re.compile(r"^  (\S+) \(\d+\)")


class NotIncremental(Exception):
    """The layer cannot be applied in place; the message says why."""


@dataclass
class _Node:
    ino: int
    mode: int
    children: dict[str, _Node] | None = None  # a directory's entries once listed


@dataclass
class _Plan:
    removals: list[tuple[str, bool]] = field(default_factory=list)  # (image path, is a directory), deepest first
    removed_names: dict[int, int] = field(default_factory=dict)  # ino -> names removed
    creations: list[str] = field(default_factory=list)  # debugfs commands
    in_place: dict[str, tuple[int, Path]] = field(default_factory=dict)  # image path -> (ino, layer file)
    kept: dict[str, int] = field(default_factory=dict)  # image path -> ino of an inode kept (xattrs to replace)
    metadata: list[tuple[str, os.stat_result, Path]] = field(default_factory=list)
    links: dict[str, int] = field(default_factory=dict)  # first image path of a hard-linked file -> links


def quote(text: str) -> str:
    if "\n" in text or "\0" in text:
        raise NotIncremental(f"a name debugfs cannot take: {text!r}")
    return '"' + text.replace('"', '""') + '"'


def _check_name(name: str) -> str:
    if "\n" in name or (name.startswith("<") and name.endswith(">")):
        raise NotIncremental(f"a name debugfs cannot take: {name!r}")
    return name


class Debugfs:
    """One image, debugfs runs on it with the clock at ``epoch``."""

    def __init__(self, debugfs: str, image: Path, epoch: int) -> None:
        self.debugfs, self.image, self.epoch = debugfs, image, epoch
        self.env = {**os.environ, "E2FSPROGS_FAKE_TIME": str(epoch)}

    def run(self, commands: list[str], *, write: bool) -> list[str]:
        """Each command's output (in order); NotIncremental when debugfs reports an error."""
        outputs: list[str] = []
        for start in range(0, len(commands), BATCH) if commands else ():
            batch = commands[start : start + BATCH]
            text = "".join(f"{command}\n" for command in [f"set_current_time @{self.epoch}", *batch])
            argv = [self.debugfs, *(["-w"] if write else []), "-f", "-", str(self.image)]
            result = subprocess.run(argv, input=text, capture_output=True, encoding="utf-8",
                                    errors="surrogateescape", env=self.env, check=False)
            errors = [line for line in result.stderr.splitlines() if line and not line.startswith("debugfs ")]
            if result.returncode or errors:
                raise NotIncremental(f"debugfs: {(errors or [result.stderr.strip()])[0]}")
            parts = result.stdout.split(_PROMPT)[1:]
            if len(parts) != len(batch) + 1:  # an output that itself holds the prompt: not to be parsed
                raise NotIncremental("debugfs output could not be split by command")
            outputs.extend(part.split("\n", 1)[1] if "\n" in part else "" for part in parts[1:])
        return outputs

    def list_dirs(self, nodes: list[_Node]) -> None:
        outputs = self.run([f"ls -p <{node.ino}>" for node in nodes], write=False)
        for node, output in zip(nodes, outputs, strict=True):
            node.children = {}
            for line in output.splitlines():
                fields = line.split("/")  # /ino/mode/uid/gid/name/size/
                if len(fields) < 7 or not fields[1].isdigit():
                    continue
                name = "/".join(fields[5:-2])
                if name not in (".", ".."):
                    node.children[name] = _Node(int(fields[1]), int(fields[2], 8))


def block_size(image: Path) -> int:
    with open(image, "rb") as handle:
        handle.seek(1024 + 24)
        (log,) = struct.unpack("<I", handle.read(4))
    return 1024 << log


def _is_dir(mode: int) -> bool:
    return stat.S_ISDIR(mode)


def _layer_entries(layer: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(image path, entry) of every entry of the layer, parents before children, names sorted."""
    stack = [(layer, "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        subdirs = []
        for entry in entries:
            path = f"{prefix}/{_check_name(entry.name)}"
            yield path, entry
            if entry.is_dir(follow_symlinks=False):
                subdirs.append((Path(entry.path), path))
        stack.extend(reversed(subdirs))


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


class _Applier:
    def __init__(self, fs: Debugfs, layer: Path) -> None:
        self.fs, self.layer = fs, layer
        self.root = _Node(ROOT_INO, stat.S_IFDIR | 0o755)
        self.nodes: dict[str, _Node | None] = {"": self.root}  # image path -> node in the parent image
        self.plan = _Plan()

    def _lookup_all(self, paths: list[str]) -> None:
        """Fill ``nodes`` for every layer path, listing the image's directories level by level."""
        by_depth: dict[int, list[str]] = {}
        for path in paths:
            by_depth.setdefault(path.count("/"), []).append(path)
        for depth in sorted(by_depth):
            parents = {path.rsplit("/", 1)[0] for path in by_depth[depth]}
            unlisted = [node for parent in parents if (node := self.nodes.get(parent)) is not None
                        and _is_dir(node.mode) and node.children is None]
            self.fs.list_dirs(unlisted)
            for path in by_depth[depth]:
                parent = self.nodes.get(path.rsplit("/", 1)[0])
                children = parent.children if parent is not None and parent.children is not None else {}
                self.nodes[path] = children.get(path.rsplit("/", 1)[1])

    def _subtree(self, path: str, node: _Node) -> list[tuple[str, _Node]]:
        """Everything under a directory of the image (deepest first), listed level by level."""
        found: list[tuple[str, _Node]] = []
        level = [(path, node)]
        while level:
            self.fs.list_dirs([n for _, n in level if n.children is None])
            following = []
            for base, directory in level:
                for name, child in sorted((directory.children or {}).items()):
                    child_path = f"{base}/{_check_name(name)}"
                    found.append((child_path, child))
                    if _is_dir(child.mode):
                        following.append((child_path, child))
            level = following
        return list(reversed(found))

    def _remove(self, path: str, node: _Node, *, contents_only: bool = False) -> None:
        if _is_dir(node.mode):
            for child_path, child in self._subtree(path, node):
                self._remove_one(child_path, child)
        if not contents_only:
            self._remove_one(path, node)

    def _remove_one(self, path: str, node: _Node) -> None:
        self.plan.removals.append((path, _is_dir(node.mode)))
        self.plan.removed_names[node.ino] = self.plan.removed_names.get(node.ino, 0) + 1

    def plan_layer(self) -> _Plan:
        entries = list(_layer_entries(self.layer))
        self._lookup_all([path for path, _ in entries])
        replaced: set[str] = set()  # image dirs removed or made anew: nothing under them exists
        first_link: dict[tuple[int, int], str] = {}
        cwd = None
        for path, entry in entries:
            st = entry.stat(follow_symlinks=False)
            parent, name = path.rsplit("/", 1)
            existing = None if parent in replaced else self.nodes.get(path)
            mode = st.st_mode
            if _whiteout(st):
                if existing is not None:
                    self._remove(path, existing)
                replaced.add(path)
                continue
            if stat.S_ISDIR(mode) and existing is not None and _is_dir(existing.mode):
                if _opaque(entry.path):
                    self._remove(path, existing, contents_only=True)
                    replaced.add(path)
                self.plan.kept[path] = existing.ino
                self.plan.metadata.append((path, st, Path(entry.path)))
                continue
            key = (st.st_dev, st.st_ino)
            if (stat.S_ISREG(mode) and existing is not None and stat.S_ISREG(existing.mode)
                    and not (st.st_nlink > 1)):
                self.plan.in_place[path] = (existing.ino, Path(entry.path))
                self.plan.kept[path] = existing.ino
                self.plan.metadata.append((path, st, Path(entry.path)))
                continue
            if existing is not None:
                self._remove(path, existing)
            if stat.S_ISDIR(mode):
                replaced.add(path)
            if cwd != parent:
                self.plan.creations.append(f"cd {quote(parent or '/')}")
                cwd = parent
            if stat.S_ISREG(mode) and st.st_nlink > 1 and key in first_link:
                first = first_link[key]
                self.plan.creations.append(f"ln {quote(first)} {quote(name)}")
                self.plan.links[first] += 1
                continue
            self.plan.creations.append(self._create(name, entry, st))
            if stat.S_ISREG(mode) and st.st_nlink > 1:
                first_link[key] = path
                self.plan.links[path] = 1
            self.plan.metadata.append((path, st, Path(entry.path)))
        return self.plan

    @staticmethod
    def _create(name: str, entry: os.DirEntry[str], st: os.stat_result) -> str:
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            return f"mkdir {quote(name)}"
        if stat.S_ISREG(mode):
            return f"write {quote(entry.path)} {quote(name)}"
        if stat.S_ISLNK(mode):
            return f"symlink {quote(name)} {quote(os.readlink(entry.path))}"
        if stat.S_ISFIFO(mode):
            return f"mknod {quote(name)} p"
        if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
            raise NotIncremental(f"{entry.path}: a file type debugfs cannot make")
        kind = "c" if stat.S_ISCHR(mode) else "b"
        return f"mknod {quote(name)} {kind} {os.major(st.st_rdev)} {os.minor(st.st_rdev)}"


def _parse_stat(output: str) -> tuple[int, int]:
    """(links, size) from ``stat``'s output."""
    links = re.search(r"Links: (\d+)", output)
    size = re.search(r"Size: (\d+)", output)
    if not links or not size:
        raise NotIncremental("debugfs stat gave no link count or size")
    return int(links.group(1)), int(size.group(1))


def _extents(output: str) -> list[tuple[int, int, int]] | None:
    """(logical start, physical start, length) of every leaf extent; None if any is uninitialized."""
    found = []
    for line in output.splitlines():
        match = _EXTENT.match(line)
        if match:
            if "Uninit" in match.group(6):
                return None
            found.append((int(match.group(1)), int(match.group(3)), int(match.group(5))))
    return sorted(found)


def _ranges(blocks: list[int]) -> Iterator[tuple[int, int]]:
    """Runs of consecutive block numbers as (first, count)."""
    blocks = sorted(set(blocks))
    start = prev = None
    for block in blocks:
        if prev is not None and block == prev + 1:
            prev = block
            continue
        if start is not None and prev is not None:
            yield start, prev - start + 1
        start = prev = block
    if start is not None and prev is not None:
        yield start, prev - start + 1


def _zero(image: Path, blocks: list[int], size: int) -> None:
    with open(image, "r+b") as handle:
        for first, count in _ranges(blocks):
            handle.seek(first * size)
            remaining = count * size
            while remaining:
                step = min(remaining, 1 << 20)
                handle.write(bytes(step))
                remaining -= step


def _xattrs(path: Path) -> dict[str, bytes]:
    names = sorted(n for n in os.listxattr(path, follow_symlinks=False) if not n.startswith(OVERLAY_XATTRS))
    return {name: os.getxattr(path, name, follow_symlinks=False) for name in names}


def apply_layer(debugfs: str, image: Path, layer: Path, *, epoch: int, scratch: Path) -> None:
    """Apply ``layer`` (an unpacked layer dir) to the ext4 file system in ``image`` (see the module's doc)."""
    fs = Debugfs(debugfs, image, epoch)
    bsize = block_size(image)
    applier = _Applier(fs, layer)
    plan = applier.plan_layer()

    # what the inodes to remove hold, and the in-place files' block maps
    removed = sorted(plan.removed_names)
    in_place = sorted(plan.in_place.items())
    kept = sorted(plan.kept.items())
    query = [c for ino in removed for c in (f"stat <{ino}>", f"blocks <{ino}>")]
    query += [c for _, (ino, _) in in_place for c in (f"stat <{ino}>", f"ex -l <{ino}>")]
    query += [f"ea_list <{ino}>" for _, ino in kept]
    outputs = iter(fs.run(query, write=False))
    freed: list[int] = []
    for ino in removed:
        links, _ = _parse_stat(next(outputs))
        blocks = [int(word) for word in next(outputs).split() if word.isdigit()]
        if links <= plan.removed_names[ino]:
            freed.extend(blocks)
    writes: list[tuple[Path, list[tuple[int, int, int]]]] = []
    for path, (_ino, source) in in_place:
        links, _ = _parse_stat(next(outputs))
        extents = _extents(next(outputs))
        wanted = -(-source.stat().st_size // bsize)
        covered = sum(length for _, _, length in extents or [])
        contiguous = extents is not None and all(
            logical == sum(length for _, _, length in extents[:index]) for index, (logical, _, _) in enumerate(extents)
        )
        if links == 1 and contiguous and covered == wanted:
            writes.append((source, extents or []))
            continue
        # not the same blocks: the file is made anew
        del plan.in_place[path]
        plan.removals.append((path, False))
        freed.extend(physical + offset for _, physical, length in extents or [] for offset in range(length))
        if extents is None:
            raise NotIncremental(f"{path}: uninitialized extents")
        parent, name = path.rsplit("/", 1)
        plan.creations.extend([f"cd {quote(parent or '/')}", f"write {quote(str(source))} {quote(name)}"])
        plan.kept.pop(path, None)
    old_xattrs = {path: [m.group(1) for line in next(outputs).splitlines() if (m := _EA_NAME.match(line))]
                  for path, _ in kept}
    old_xattrs = {path: names for path, names in old_xattrs.items() if path in plan.kept}

    removals = [f"{'rmdir' if is_dir else 'rm'} {quote(path)}" for path, is_dir in plan.removals]
    fs.run(removals, write=True)
    _zero(image, freed, bsize)  # before anything can take those blocks again
    fs.run(plan.creations, write=True)
    for source, extents in writes:
        _write_over(image, source, extents, bsize)
    fs.run(_metadata(plan, old_xattrs, epoch, scratch), write=True)


def _write_over(image: Path, source: Path, extents: list[tuple[int, int, int]], bsize: int) -> None:
    with open(source, "rb") as src, open(image, "r+b") as dst:
        for _, physical, length in extents:
            data = src.read(length * bsize)
            dst.seek(physical * bsize)
            dst.write(data.ljust(length * bsize, b"\0"))


def _metadata(plan: _Plan, old_xattrs: dict[str, list[str]], epoch: int, scratch: Path) -> list[str]:
    commands: list[str] = []
    values = 0
    for path, st, source in plan.metadata:
        target = quote(path)
        if path in plan.in_place:
            commands.append(f"sif {target} size {st.st_size}")
        commands += [
            f"sif {target} mode 0{st.st_mode:o}",
            f"sif {target} uid {st.st_uid}",
            f"sif {target} gid {st.st_gid}",
            f"sif {target} mtime @{int(st.st_mtime)}",
            f"sif {target} mtime_extra {(st.st_mtime_ns % 1_000_000_000) << 2}",
        ]
        for name in ("atime", "ctime", "crtime"):
            commands += [f"sif {target} {name} @{epoch}", f"sif {target} {name}_extra 0"]
        if path in plan.links:
            commands.append(f"sif {target} links_count {plan.links[path]}")
        for name in old_xattrs.get(path, []):
            commands.append(f"ea_rm {target} {quote(name)}")
        for name, value in _xattrs(source).items():
            value_file = scratch / f"xattr-{values}"
            value_file.write_bytes(value)
            values += 1
            commands.append(f"ea_set -f {quote(str(value_file))} {target} {quote(name)}")
    return commands
