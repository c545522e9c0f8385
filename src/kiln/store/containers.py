"""Container images in a region's OCI layout: read one by its ref name, write one under a ref name.

A container image is a manifest in ``index.json`` whose ``org.opencontainers.image.ref.name`` is
``<repository>:<tag>`` (an AMI's ref is its id, which has no colon), so ``skopeo inspect
oci:<region dir>:<repository>:<tag>`` reads it. Its layers are ordinary blobs of the layout: an AMI's
layers are shared, not copied, and gc keeps whatever a ref's manifest names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

from kiln.errors import InvalidInput, NotFound
from kiln.store.blobs import hex_of
from kiln.store.layers import LayerInfo, capture, open_compressed_sink
from kiln.store.layout import (
    CONFIG_TYPE,
    LAYER_GZIP,
    LAYER_ZSTD,
    MANIFEST_TYPE,
    Descriptor,
    Layout,
    canonical_json,
    write_file_atomic,
)
from kiln.store.unpack import unpack_layer

# zstd layer digest -> the digest of its gzip form, one small file each (a memo: checked against the blobs)
PORTABLE_MEMO = "kiln-gzip-forms"


def is_container_ref(ref: str) -> bool:
    """A ref name of a container image (``repository:tag``), not of an AMI."""
    return ":" in ref


@dataclass(frozen=True)
class ContainerImage:
    ref: str
    manifest_digest: str
    layers: list[LayerInfo]
    config: dict[str, Any]  # the whole OCI image config


def read_image(ref: str, region: str = "local") -> ContainerImage:
    """The image ``ref`` names in the region's layout (a container image, or an AMI by its id)."""
    layout = Layout.for_region(region)
    digest = layout.refs().get(ref)
    if digest is None:
        raise NotFound(f"no image {ref!r} in the OCI layout of region {region}", location="parentImage",
                       hint=f"skopeo list-tags is no help here; look at {layout.root / 'index.json'}")
    manifest = layout.read_json_blob(digest)
    config = layout.read_json_blob(manifest["config"]["digest"])
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(manifest["layers"]):
        raise InvalidInput(f"image {ref!r}: its config lists {len(diff_ids)} diff_ids for "
                           f"{len(manifest['layers'])} layers", location="parentImage")
    layers = [LayerInfo(layer["digest"], diff_id, layer["size"], layer["mediaType"])
              for layer, diff_id in zip(manifest["layers"], diff_ids, strict=True)]
    return ContainerImage(ref, digest, layers, config)


def layer_dirs(layers: list[LayerInfo], region: str = "local") -> list[Path]:
    """Unpacked read-only dirs of ``layers`` (base first), unpacking each on first use."""
    blobs = Layout.for_region(region).blobs
    return [unpack_layer(blobs, layer.digest, layer.media_type, allow_devices=True) for layer in layers]


def capture_layer(upper_dir: Path, region: str, clamp: int) -> LayerInfo:
    """An overlay upper dir as one gzip layer blob, every mtime clamped to ``clamp`` (reproducible bytes)."""
    return capture(Path(upper_dir), Layout.for_region(region).blobs, overlay=True, clamp=clamp, compression="gzip")


def portable_layers(layers: list[LayerInfo], region: str = "local") -> list[LayerInfo]:
    """``layers`` as every image tool reads them: zstd layers (an AMI's) recompressed with gzip, the
    same tar (diff_id) in a deterministic gzip stream; others as they are. Same input, same blob; a layer
    converted before (and whose gzip blob gc has not taken) is not converted again."""
    layout = Layout.for_region(region)
    blobs = layout.blobs
    memo = layout.root / PORTABLE_MEMO
    portable = []
    for layer in layers:
        if layer.media_type != LAYER_ZSTD:
            portable.append(layer)
            continue
        known = memo / hex_of(layer.digest)
        if known.is_file():  # converted before: the gzip blob, while it is still there
            digest = known.read_text().strip()
            if blobs.exists(digest):
                portable.append(LayerInfo(digest, layer.diff_id, blobs.size(digest), LAYER_GZIP))
                continue
        with open(blobs.path(layer.digest), "rb") as source, blobs.writer() as writer:
            compressed = open_compressed_sink(writer, "gzip")  # type: ignore[arg-type]
            with zstandard.ZstdDecompressor().stream_reader(source) as tar:
                while chunk := tar.read(1 << 20):
                    compressed.write(chunk)
            compressed.close()
            digest = writer.commit()
            portable.append(LayerInfo(digest, layer.diff_id, writer.size, LAYER_GZIP))
        memo.mkdir(exist_ok=True)
        write_file_atomic(known, digest.encode())
    return portable


def write_image(ref: str, layers: list[LayerInfo], config: dict[str, Any], region: str = "local") -> Descriptor:
    """Write the config and manifest blobs of an image of ``layers`` and name it ``ref`` in index.json
    (replacing what had that name); returns the manifest's descriptor."""
    layout = Layout.for_region(region)
    config_bytes = canonical_json(config)
    config_descriptor = Descriptor(CONFIG_TYPE, layout.blobs.put_bytes(config_bytes), len(config_bytes))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": config_descriptor.as_dict(),
        "layers": [layer.descriptor.as_dict() for layer in layers],
    }
    manifest_bytes = canonical_json(manifest)
    descriptor = Descriptor(MANIFEST_TYPE, layout.blobs.put_bytes(manifest_bytes), len(manifest_bytes))
    layout.add_ref(ref, descriptor)
    return descriptor


def remove_image(ref: str, region: str = "local") -> None:
    """Drop the ref (its blobs go at the next gc unless something else names them)."""
    Layout.for_region(region).remove_ref(ref)


def layout_dir(region: str = "local") -> Path:
    return Layout.for_region(region).root
