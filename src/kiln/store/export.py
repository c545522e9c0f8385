"""Exports: flattened tar, single-image OCI archive, and disk images (raw, qcow2, vmdk, vhd).

An image with a kernel under /boot exports as a bootable GPT disk (``kiln.store.disk_image``); one
without a kernel (busybox, a minbase parent) as its bare ext4 file system, as ``rootfs-ext4`` always
does, and the result says so."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kiln.errors import InvalidInput, SystemRequirement
from kiln.home import cache_dir
from kiln.store.blobs import BlobQuarantined
from kiln.store.disk_ext4_apply import NotIncremental
from kiln.store.disk_ext4_apply import apply_layer as apply_ext4_layer
from kiln.store.disk_image import DEFAULT_SIZE, check_size, find_boot_files, write_boot_disk
from kiln.store.export_disk import fix_vhd, fix_vmdk
from kiln.store.export_ext4 import derived_uuid, make_ext4, tree_epoch
from kiln.store.export_flatten import apply_layer, flatten_dirs
from kiln.store.layers import write_tar
from kiln.store.layout import INDEX_TYPE, REF_NAME, Layout
from kiln.store.referrers import exported as exported_referrers

FORMATS = ("tar", "oci-archive", "oci", "raw", "qcow2", "vmdk", "vhd", "rootfs-ext4")
DISK_FORMATS = ("raw", "qcow2", "vmdk", "vhd")
NO_KERNEL_NOTE = ("the image has no kernel (/boot/vmlinuz-*): written as its bare ext4 file system, not bootable "
                  "(build it with the kiln-bootable-linux component for a bootable disk)")
QEMU_FORMAT = {"qcow2": "qcow2", "vmdk": "vmdk", "vhd": "vpc"}
SLACK = 64 << 20
MIB = 1 << 20
OCI_LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
LAYOUT_FORMATS = ("oci-archive", "oci")  # written from the store's blobs, nothing unpacked


def _scratch() -> Path:
    root = cache_dir() / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root, prefix="export-"))


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemRequirement(f"{name} is not installed", hint=f"apt-get install {package}")
    return path


def tree_size(root: Path) -> int:
    total = 0
    for path in root.rglob("*"):
        try:
            total += path.lstat().st_size + 4096
        except OSError:
            continue
    return total


def oci_contents(layout: Layout, ami_id: str) -> tuple[bytes, list[str]]:
    """An OCI layout holding just this image: its ``index.json`` (the image first, by its AMI id; then
    its referrers, the SBOMs, with their ``sha256-<hex>`` referrers tag) and every blob it needs (the
    image's blobs checked against their digests first)."""
    refs = layout.refs()
    if ami_id not in refs:
        raise InvalidInput(f"{ami_id} has no manifest in the region's OCI layout", location=ami_id)
    manifest_digest = refs[ami_id]
    manifest = layout.read_json_blob(manifest_digest)
    descriptors = [manifest["config"], *manifest["layers"]]
    for desc in descriptors:
        if layout.blobs.hash_file(desc["digest"]) != desc["digest"]:
            layout.blobs.quarantine(desc["digest"])
            raise BlobQuarantined(f"blob {desc['digest']} of {ami_id} is corrupt; it was quarantined")
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                "digest": manifest_digest,
                "size": layout.blobs.size(manifest_digest),
                "annotations": {REF_NAME: ami_id},
            }
        ],
    }
    carried, carried_blobs = exported_referrers(layout, manifest_digest)
    index["manifests"] += carried
    digests = [manifest_digest] + [d["digest"] for d in descriptors] + carried_blobs
    return json.dumps(index).encode(), list(dict.fromkeys(digests))


def write_oci_archive(layout: Layout, ami_id: str, dest: Path) -> None:
    """A tar of an OCI layout holding just this image and its referrers (``skopeo inspect
    oci-archive:FILE:AMI_ID`` reads it; ``oci-archive:FILE`` alone when it has no referrers)."""
    index, digests = oci_contents(layout, ami_id)
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (
            ("oci-layout", OCI_LAYOUT_FILE),
            ("index.json", index),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for digest in digests:
            tar.add(layout.blobs.path(digest), arcname=f"blobs/sha256/{digest.split(':', 1)[1]}", filter=_plain)


def write_oci_dir(layout: Layout, ami_id: str, dest: Path) -> None:
    """The same OCI layout as ``write_oci_archive``'s, as a directory (``oci:DIR:AMI_ID``); ``dest`` must
    not exist or be empty. Blobs are hard-linked from the store where the filesystem allows."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInput("an oci export goes to a new or empty directory", location=str(dest))
    index, digests = oci_contents(layout, ami_id)
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for digest in digests:
        target = blobs / digest.split(":", 1)[1]
        try:
            os.link(layout.blobs.path(digest), target)
        except OSError:
            shutil.copyfile(layout.blobs.path(digest), target)
    (dest / "oci-layout").write_bytes(OCI_LAYOUT_FILE)
    (dest / "index.json").write_bytes(index)


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Archive entries carry nothing of the store they came from (times, owners): same image, same bytes."""
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info


def content_identity(layout: Layout, ami_id: str) -> str:
    """What the disk's UUIDs derive from: the image's layers (a copy of the image has the same)."""
    manifest = layout.read_json_blob(layout.refs()[ami_id])
    return ",".join(layer["digest"] for layer in manifest["layers"])


def disk_size_for(tree: Path) -> int:
    return -(-(int(tree_size(tree) * 1.3) + SLACK) // MIB) * MIB  # whole MiB: whole sectors for any VM


def make_raw(tree: Path, dest: Path, *, identity: str, epoch: int, size: int | None = None) -> int:
    """A raw ext4 image of ``tree``, the same bytes for the same tree and ``identity``; its size.

    ``size`` (another disk's) is kept when the tree fits in it, else the disk grows as an export would."""
    tools = _tool("mkfs.ext4", "e2fsprogs"), _tool("debugfs", "e2fsprogs")
    if size and tree_size(tree) + SLACK // 4 <= size:
        try:
            make_ext4(*tools, tree, dest, size, identity=identity, epoch=epoch)
            return size
        except subprocess.CalledProcessError:
            pass  # out of blocks or inodes after all
    size = max(size or 0, disk_size_for(tree))
    make_ext4(*tools, tree, dest, size, identity=identity, epoch=epoch)
    return size


@dataclass(frozen=True)
class DiskGeometry:
    """What a raw disk export is made from besides the files: the UUIDs' source, the times, the file
    system's size, and how many of the image's layers the file system was first made from
    (``base_layers``; the layers after it are applied to it one by one, so a child's disk is its
    parent's with the child's layer applied; 0: all of them at once, as a plain export)."""

    identity: str
    epoch: int
    size: int
    base_layers: int = 0


def _incremental(tree: Path, layers: list[Path], dest: Path, like: DiskGeometry, scratch: Path) -> bool:
    """The file system of ``layers[:base_layers]`` (flattened in ``tree``) at ``dest``, the other layers
    applied to it (and to ``tree``); False when a layer cannot be applied in place."""
    tools = _tool("mkfs.ext4", "e2fsprogs"), _tool("debugfs", "e2fsprogs")
    if make_raw(tree, dest, identity=like.identity, epoch=like.epoch, size=like.size) != like.size:
        return False  # not the parent's file system
    for number, layer in enumerate(layers[like.base_layers :]):
        work = scratch / f"apply-{number}"
        work.mkdir()
        try:
            apply_ext4_layer(tools[1], dest, layer, epoch=like.epoch, scratch=work)
        except NotIncremental:
            return False
        apply_layer(layer, tree)
    return True


def build_raw(layout: Layout, ami_id: str, layers: list[Path], dest: Path, like: DiskGeometry | None,
              scratch: Path) -> tuple[Path, DiskGeometry]:
    """The image's ext4 file system at ``dest``, and its flattened tree; see :func:`export_raw_disk`."""
    if like and 0 < like.base_layers < len(layers):
        tree = flatten_dirs(layers[: like.base_layers], scratch / "root")
        if _incremental(tree, layers, dest, like, scratch):
            return tree, like
        shutil.rmtree(tree)
    tree = flatten_dirs(layers, scratch / "root")
    identity = like.identity if like else content_identity(layout, ami_id)
    epoch = like.epoch if like else tree_epoch(tree)
    size = make_raw(tree, dest, identity=identity, epoch=epoch, size=like.size if like else None)
    return tree, DiskGeometry(identity, epoch, size, len(layers))


def export_raw_disk(
    layout: Layout, ami_id: str, layers: list[Path], dest: Path, like: DiskGeometry | None = None, *,
    volume_size: int | None = None,
) -> DiskGeometry:
    """The raw disk export; with ``like`` (the geometry of the disk of an image whose layers begin this
    one's), made as that disk was — its identity, epoch and file system, the layers after
    ``like.base_layers`` applied to it in place — so an image that changed a few files differs from it
    in a few blocks (a publish to EBS sends only those). When a layer cannot be applied in place, the
    file system is made afresh with ``like``'s identity and epoch, at least its size. With
    ``volume_size`` (bytes) an image with a kernel is written as its bootable GPT disk of that size
    around the file system. The same image and ``like`` give the same bytes every time."""
    scratch = _scratch()
    try:
        if volume_size is None:
            _, geometry = build_raw(layout, ami_id, layers, Path(dest), like, scratch)
            return geometry
        rootfs = scratch / "root.ext4"  # without ``like``: as large as a bootable export makes it
        tree, geometry = build_raw(layout, ami_id, layers, rootfs, like, scratch)
        boot = find_boot_files(tree)
        if boot is None:
            shutil.move(rootfs, dest)
            return geometry
        write_boot_disk(rootfs, Path(dest), boot=boot, fs_uuid=derived_uuid(geometry.identity, "fs-uuid"),
                        identity=geometry.identity, epoch=geometry.epoch, size=volume_size, scratch=scratch)
        return geometry
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass(frozen=True)
class Exported:
    """What an export wrote: for a disk, whether it boots, how, and its virtual size."""

    path: Path
    bootable: bool | None = None  # None: not a disk format
    boot_mode: str | None = None
    virtual_size: int | None = None
    note: str | None = None


def _disk(tree: Path, raw: Path, scratch: Path, fmt: str, *, identity: str, epoch: int, size: int | None,
          boot_mode: str | None) -> Exported:
    """The raw disk at ``raw``: bootable when the tree has a kernel (and ``fmt`` is not rootfs-ext4)."""
    boot = find_boot_files(tree, boot_mode) if fmt != "rootfs-ext4" else None
    if boot is None:
        make_raw(tree, raw, identity=identity, epoch=epoch)
        note = NO_KERNEL_NOTE if fmt != "rootfs-ext4" else None
        return Exported(raw, bootable=False, virtual_size=raw.stat().st_size, note=note)
    size = DEFAULT_SIZE if size is None else size
    rootfs_size = disk_size_for(tree)
    check_size(size, rootfs_size)  # before anything is written
    rootfs = scratch / "root.ext4"
    make_raw(tree, rootfs, identity=identity, epoch=epoch, size=rootfs_size)
    write_boot_disk(rootfs, raw, boot=boot, fs_uuid=derived_uuid(identity, "fs-uuid"), identity=identity,
                    epoch=epoch, size=size, scratch=scratch)
    rootfs.unlink()
    return Exported(raw, bootable=True, boot_mode=boot.boot_mode, virtual_size=size)


def export_layers(layout: Layout, ami_id: str, layers: list[Path], fmt: str, dest: Path, *,
                  size: int | None = None, boot_mode: str | None = None) -> Exported:
    """Write the image as ``fmt``; ``size`` (bytes) and ``boot_mode`` apply to a bootable disk."""
    if fmt not in FORMATS:
        raise InvalidInput(f"export format must be one of {', '.join(FORMATS)}", location=fmt)
    dest = Path(dest)
    if fmt == "oci-archive":
        write_oci_archive(layout, ami_id, dest)
        return Exported(dest)
    if fmt == "oci":
        write_oci_dir(layout, ami_id, dest)
        return Exported(dest)
    scratch = _scratch()
    try:
        tree = flatten_dirs(layers, scratch / "root")
        if fmt == "tar":
            with open(dest, "wb") as handle:
                write_tar(tree, handle)
            return Exported(dest)
        identity = content_identity(layout, ami_id)
        raw = dest if fmt in ("raw", "rootfs-ext4") else scratch / "disk.raw"
        epoch = tree_epoch(tree)  # every time the disk carries: one the content itself gives
        disk = _disk(tree, raw, scratch, fmt, identity=identity, epoch=epoch, size=size, boot_mode=boot_mode)
        if fmt in QEMU_FORMAT:
            # Converted under a fixed name: a VMDK records its own file name in its descriptor.
            converted = scratch / f"disk.{fmt}"
            qemu = _tool("qemu-img", "qemu-utils")
            subprocess.run(
                [qemu, "convert", "-f", "raw", "-O", QEMU_FORMAT[fmt], str(raw), str(converted)],
                check=True,
                capture_output=True,
            )
            if fmt == "vmdk":
                fix_vmdk(converted, identity)
            elif fmt == "vhd":
                fix_vhd(converted, identity, epoch)
            shutil.move(converted, dest)
        return Exported(dest, disk.bootable, disk.boot_mode, disk.virtual_size, disk.note)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
