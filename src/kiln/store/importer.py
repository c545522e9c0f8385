"""Parent images from outside: rootfs tarballs, directories, OCI layouts and oci-archives."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from kiln.errors import InvalidInput, NotFound
from kiln.home import cache_dir
from kiln.store.adopt import adopt
from kiln.store.fidelity import CaptureRecord
from kiln.store.layers import COMPRESSIONS, COPY_BUFSIZE, LayerInfo, capture, open_compressed_sink
from kiln.store.layout import LAYER_TYPES, REF_NAME, Descriptor, Layout
from kiln.store.limits import SizeLimit, import_limit
from kiln.store.tarheaders import members, open_stream
from kiln.store.trailing import TrailingCapture
from kiln.store.unpack import (
    TAR_ERRORS,
    SizeBudget,
    _HashingReader,
    entry_error,
    extract_file,
    open_decompressed,
)

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
JSON_MAX = 4 << 20  # bytes of a manifest, index or config blob


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
    except (tarfile.TarError, OSError, ValueError):  # ValueError: a damaged pax or sparse header
        return False
    return bool({"oci-layout", "./oci-layout"} & names)


def _convert_layer(
    source: Path, desc: Descriptor, where: str, layout: Layout, compression: str, limit: SizeLimit
) -> LayerInfo:
    """Copy an OCI layer blob into the store, recompressed, verifying its digest on the way and
    counting its entries against ``limit`` as they stream past (a bomb is refused at the entry that
    crosses it, having written a few compressed bytes)."""
    if desc.media_type not in LAYER_TYPES:
        raise InvalidInput(f"unsupported layer media type {desc.media_type!r}", location=where)
    with open(source, "rb") as raw, layout.blobs.writer() as writer:
        reader = _HashingReader(raw)  # type: ignore[arg-type]
        compressed = open_compressed_sink(writer, compression)  # type: ignore[arg-type]
        plain = _TeeReader(open_decompressed(reader, desc.media_type), compressed)  # type: ignore[arg-type]
        budget = SizeBudget(limit)
        label = f"layer {desc.digest}"
        try:
            with open_stream(plain) as tar:
                for member in members(tar):
                    try:
                        budget.charge(member, member.name)
                    except InvalidInput as error:
                        raise entry_error(label, member.name, error) from None
            plain.drain()
        except TAR_ERRORS as error:
            reader.drain()
            _check_digest(desc, "sha256:" + reader.hash.hexdigest(), where)
            raise InvalidInput(f"not a valid tar: {error}", location=label) from None
        if compressed is not writer:
            compressed.close()
        reader.drain()
        _check_digest(desc, "sha256:" + reader.hash.hexdigest(), where)
        digest = writer.commit()
        return LayerInfo(digest, "sha256:" + plain.hash.hexdigest(), writer.size, COMPRESSIONS[compression])


class _TeeReader:
    """Reads a layer's tar stream for tarfile while hashing it (the diff_id) and recompressing it."""

    def __init__(self, source: BinaryIO, sink: BinaryIO) -> None:
        self.source = source
        self.sink = sink
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.hash.update(data)
        self.sink.write(data)
        return data

    def drain(self) -> None:
        while self.read(COPY_BUFSIZE):
            pass


def _check_digest(desc: Descriptor, actual: str, where: str) -> None:
    if actual != desc.digest:
        raise InvalidInput(f"digest mismatch: expected {desc.digest}, actual {actual}", location=where)


def _descriptor(data: Any, where: str) -> Descriptor:
    """A descriptor object, its digest a sha256 one (it names a file: nothing else may reach the path)."""
    if not isinstance(data, dict):
        raise InvalidInput("descriptor is not an object", location=where)
    digest, size, media_type = data.get("digest"), data.get("size"), data.get("mediaType", "")
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise InvalidInput(f"digest {digest!r} is not a sha256 digest", location=where)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(f"size {size!r} is not a byte count", location=where)
    return Descriptor(str(media_type), digest, size)


class _OciSource:
    """An OCI image layout being imported: every blob is checked against its descriptor."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def blob(self, desc: Descriptor, where: str) -> Path:
        """The blob's path, once its size is the descriptor's."""
        path = self.root / "blobs" / desc.digest.replace(":", "/", 1)
        try:
            actual = path.lstat()
        except FileNotFoundError:
            raise InvalidInput("blob is missing from the layout", location=where) from None
        if not stat.S_ISREG(actual.st_mode):
            raise InvalidInput("blob is not a regular file", location=where)
        if actual.st_size != desc.size:
            raise InvalidInput(f"size mismatch: expected {desc.size}, actual {actual.st_size}", location=where)
        return path

    def json(self, desc: Descriptor, where: str) -> dict[str, Any]:
        if desc.size > JSON_MAX:
            raise InvalidInput(f"size {desc.size} is more than a manifest or config may have ({JSON_MAX})",
                               location=where)
        data = self.blob(desc, where).read_bytes()
        _check_digest(desc, "sha256:" + hashlib.sha256(data).hexdigest(), where)
        return _json_object(data, where)


def _json_object(data: bytes, where: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput(f"not valid JSON: {error}", location=where) from None
    if not isinstance(parsed, dict):
        raise InvalidInput("not a JSON object", location=where)
    return parsed


def _list(data: dict[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise InvalidInput(f"{key} is not a list", location=where)
    return value


def layers_from_oci_layout(
    root: Path,
    layout: Layout,
    ref: str | None = None,
    compression: str = "zstd",
    limit: SizeLimit | None = None,
) -> tuple[list[LayerInfo], str]:
    """The manifest's layers in order (base first) and the image's OCI architecture.

    Every descriptor is verified as the OCI image spec requires (digest and size of the manifest,
    config and layers, the config's ``rootfs.diff_ids`` against the uncompressed layers); the first
    that fails is refused, naming it.
    """
    limit = limit or import_limit()
    source = _OciSource(root)
    index_where = "index.json"
    try:
        with open(root / "index.json", "rb") as handle:
            data = handle.read(JSON_MAX + 1)
    except OSError as error:
        raise InvalidInput(f"cannot read: {error.strerror}", location=index_where) from None
    if len(data) > JSON_MAX:
        raise InvalidInput(f"more than an index may have ({JSON_MAX} bytes)", location=index_where)
    index = _json_object(data, index_where)
    entries = list(enumerate(_list(index, "manifests", index_where)))
    if ref:
        entries = [(i, m) for i, m in entries if isinstance(m, dict) and m.get("annotations", {}).get(REF_NAME) == ref]
    if not entries:
        raise NotFound(f"no image {ref or ''} in OCI layout {root}")
    position, chosen = entries[0]
    where = f"index.json manifests[{position}]"
    desc = _descriptor(chosen, where)
    manifest = source.json(desc, f"{where} ({desc.digest})")
    if "manifests" in manifest:  # a nested index: take the first platform
        nested = _list(manifest, "manifests", f"index {desc.digest}")
        if not nested:
            raise InvalidInput("index lists no manifests", location=f"index {desc.digest}")
        where = f"index {desc.digest} manifests[0]"
        desc = _descriptor(nested[0], where)
        manifest = source.json(desc, f"{where} ({desc.digest})")
    manifest_where = f"manifest {desc.digest}"
    config_desc = _descriptor(manifest.get("config"), f"{manifest_where} config")
    config = source.json(config_desc, f"{manifest_where} config ({config_desc.digest})")
    layer_descs = [
        _descriptor(layer, f"{manifest_where} layers[{i}]")
        for i, layer in enumerate(_list(manifest, "layers", manifest_where))
    ]
    config_where = f"config {config_desc.digest}"
    rootfs = config.get("rootfs")
    diff_ids = _list(rootfs if isinstance(rootfs, dict) else {}, "diff_ids", f"{config_where} rootfs")
    if len(diff_ids) != len(layer_descs):
        raise InvalidInput(
            f"lists {len(diff_ids)} diff_ids for {len(layer_descs)} layers", location=f"{config_where} rootfs.diff_ids"
        )
    layers = []
    for i, layer_desc in enumerate(layer_descs):
        where = f"{manifest_where} layers[{i}] ({layer_desc.digest})"
        path = source.blob(layer_desc, where)
        layer = _convert_layer(path, layer_desc, where, layout, compression, limit)
        if diff_ids[i] != layer.diff_id:
            raise InvalidInput(
                f"does not match uncompressed layer {layer_desc.digest}: "
                f"expected {diff_ids[i]}, actual {layer.diff_id}",
                location=f"{config_where} rootfs.diff_ids[{i}]",
            )
        layers.append(layer)
    architecture = config.get("architecture", "")
    return layers, architecture if isinstance(architecture, str) else ""


def import_layers(
    source: Path,
    layout: Layout,
    *,
    allow_devices: bool = False,
    compression: str = "zstd",
    limit: SizeLimit | None = None,
) -> tuple[list[LayerInfo], str | None]:
    """Layers (and the OCI architecture, if known) for any supported import source; no layer may
    expand past ``limit`` (default: ``kiln.store.limits.import_limit()``)."""
    source = Path(source)
    limit = limit or import_limit()
    if not source.exists():
        raise NotFound(f"import source {source} does not exist")
    if source.is_dir() and _is_oci_layout(source):
        return layers_from_oci_layout(source, layout, compression=compression, limit=limit)
    if source.is_dir():
        return [capture_dir(source, layout, compression=compression, limit=limit)], None
    scratch = scratch_dir()
    try:
        if _is_oci_archive(source):
            (scratch / "oci").mkdir()
            extract_file(source, scratch / "oci", kind="archive", limit=limit)
            return layers_from_oci_layout(scratch / "oci", layout, compression=compression, limit=limit)
        tree = scratch / "root"
        tree.mkdir()
        layer = extract_and_capture(
            source, tree, layout, allow_devices=allow_devices, compression=compression, limit=limit
        )
        return [layer], None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def capture_dir(source: Path, layout: Layout, *, compression: str, limit: SizeLimit) -> LayerInfo:
    """A directory as one layer, refused when unpacking it would pass ``limit``."""
    record = CaptureRecord()
    layer = capture(source, layout.blobs, compression=compression, record=record)
    if record.unpacked_bytes > limit.bytes:
        raise InvalidInput(f"directory expands past the size limit of {limit}", location=str(source))
    return layer


def extract_and_capture(
    source: Path, tree: Path, layout: Layout, *, allow_devices: bool, compression: str, limit: SizeLimit
) -> LayerInfo:
    """Extract a rootfs tarball into ``tree`` (vetting every entry) and capture it as a layer, while
    extracting when the tarball allows (``kiln.store.trailing``); the tree then becomes the layer's
    unpacked dir (``kiln.store.adopt``): the tarball is extracted once, and never the blob."""
    trailing = TrailingCapture(tree, layout.blobs, compression=compression)
    try:
        extract_file(source, tree, allow_devices=allow_devices, limit=limit, on_entry=trailing.feed)
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
