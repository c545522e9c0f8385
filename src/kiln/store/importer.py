"""Parent images from outside: rootfs tarballs, directories, OCI layouts and oci-archives."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
from pathlib import Path

from kiln.errors import InvalidInput, NotFound
from kiln.home import cache_dir
from kiln.store.adopt import adopt
from kiln.store.fidelity import CaptureRecord
from kiln.store.layers import COMPRESSIONS, LayerInfo, capture, open_compressed_sink
from kiln.store.layout import LAYER_TYPES, REF_NAME, Layout
from kiln.store.trailing import TrailingCapture
from kiln.store.unpack import _HashingReader, extract_file, open_decompressed


def scratch_dir() -> Path:
    root = cache_dir() / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root, prefix="import-"))


def _is_oci_layout(path: Path) -> bool:
    return (path / "oci-layout").is_file() and (path / "index.json").is_file()


def _is_oci_archive(path: Path) -> bool:
    """Whether the first entries of the tar file hold ``oci-layout`` (read lazily: a rootfs tarball
    is not listed in full just to be told apart)."""
    try:
        with tarfile.open(path) as tar:
            names = {member.name for _, member in zip(range(8), tar, strict=False)}
    except (tarfile.TarError, OSError):
        return False
    return bool({"oci-layout", "./oci-layout"} & names)


def _convert_layer(source: Path, media_type: str, layout: Layout, compression: str = "zstd") -> LayerInfo:
    """Copy an OCI layer blob into the store, recompressed (verifying its digest on the way)."""
    if media_type not in LAYER_TYPES:
        raise InvalidInput(f"unsupported layer media type {media_type!r}", location=str(source))
    with open(source, "rb") as raw, layout.blobs.writer() as writer:
        reader = _HashingReader(raw)  # type: ignore[arg-type]
        plain = open_decompressed(reader, media_type)  # type: ignore[arg-type]
        compressed = open_compressed_sink(writer, compression)  # type: ignore[arg-type]
        diff = hashlib.sha256()
        for chunk in iter(lambda: plain.read(1 << 20), b""):
            diff.update(chunk)
            compressed.write(chunk)
        if compressed is not writer:
            compressed.close()
        reader.drain()
        if "sha256:" + reader.hash.hexdigest() != "sha256:" + source.name:
            raise InvalidInput("layer blob does not match its digest", location=str(source))
        digest = writer.commit()
        return LayerInfo(digest, "sha256:" + diff.hexdigest(), writer.size, COMPRESSIONS[compression])


def layers_from_oci_layout(
    root: Path, layout: Layout, ref: str | None = None, compression: str = "zstd"
) -> tuple[list[LayerInfo], str]:
    """The manifest's layers in order (base first) and the image's OCI architecture."""
    index = json.loads((root / "index.json").read_text())
    manifests = index.get("manifests", [])
    if ref:
        manifests = [m for m in manifests if m.get("annotations", {}).get(REF_NAME) == ref]
    if not manifests:
        raise NotFound(f"no image {ref or ''} in OCI layout {root}")

    def blob(digest: str) -> Path:
        return root / "blobs" / digest.replace(":", "/", 1)

    manifest = json.loads(blob(manifests[0]["digest"]).read_text())
    if "manifests" in manifest:  # a nested index: take the first platform
        manifest = json.loads(blob(manifest["manifests"][0]["digest"]).read_text())
    config = json.loads(blob(manifest["config"]["digest"]).read_text())
    layers = [
        _convert_layer(blob(layer["digest"]), layer["mediaType"], layout, compression)
        for layer in manifest["layers"]
    ]
    return layers, config.get("architecture", "")


def import_layers(
    source: Path, layout: Layout, *, allow_devices: bool = False, compression: str = "zstd"
) -> tuple[list[LayerInfo], str | None]:
    """Layers (and the OCI architecture, if known) for any supported import source."""
    source = Path(source)
    if not source.exists():
        raise NotFound(f"import source {source} does not exist")
    if source.is_dir() and _is_oci_layout(source):
        return layers_from_oci_layout(source, layout, compression=compression)
    if source.is_dir():
        return [capture(source, layout.blobs, compression=compression)], None
    scratch = scratch_dir()
    try:
        if _is_oci_archive(source):
            with tarfile.open(source) as tar:
                tar.extractall(scratch / "oci", filter="data")
            return layers_from_oci_layout(scratch / "oci", layout, compression=compression)
        tree = scratch / "root"
        tree.mkdir()
        return [extract_and_capture(source, tree, layout, allow_devices=allow_devices, compression=compression)], None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def extract_and_capture(
    source: Path, tree: Path, layout: Layout, *, allow_devices: bool, compression: str
) -> LayerInfo:
    """Extract a rootfs tarball into ``tree`` (vetting every entry) and capture it as a layer, while
    extracting when the tarball allows (``kiln.store.trailing``); the tree then becomes the layer's
    unpacked dir (``kiln.store.adopt``): the tarball is extracted once, and never the blob."""
    trailing = TrailingCapture(tree, layout.blobs, compression=compression)
    try:
        extract_file(source, tree, allow_devices=allow_devices, on_entry=trailing.feed)
        layer = trailing.result()
    except BaseException:
        trailing.abort()
        raise
    record = trailing.record
    if layer is None:
        record = CaptureRecord()
        layer = capture(tree, layout.blobs, compression=compression, record=record)
    adopt(layout.blobs, layer.digest, tree, record)
    return layer
