"""The OCI image layout of a region: ``oci-layout``, ``index.json`` and manifest/config blobs.

``index.json`` lists one manifest per registered AMI, with the AMI id as its
``org.opencontainers.image.ref.name`` annotation, so ``skopeo inspect oci:<dir>:<ami-id>`` works.
Updates are serialized by a file lock and written atomically (temp, fsync, rename, fsync dir).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.home import region_dir
from kiln.store.blobs import BlobStore, batched_dir_sync, fsync_dir, sync_pending_dirs

REF_NAME = "org.opencontainers.image.ref.name"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
LAYER_TYPES = (LAYER_ZSTD, LAYER_GZIP, LAYER_TAR, DOCKER_LAYER_GZIP)

# EC2 architecture names -> OCI (GOARCH) names.
OCI_ARCH = {"x86_64": "amd64", "arm64": "arm64", "i386": "386", "x86_64_mac": "amd64", "arm64_mac": "arm64"}
EC2_ARCH = {"amd64": "x86_64", "arm64": "arm64", "386": "i386"}


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def write_file_atomic(path: Path, data: bytes) -> None:
    sync_pending_dirs()  # blobs it may name are durable first (blobs.batched_dir_sync)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def as_dict(self, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if annotations:
            data["annotations"] = annotations
        return data


class Layout:
    """One region's OCI layout directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = BlobStore(self.root)

    @classmethod
    def for_region(cls, region: str) -> Layout:
        layout = cls(region_dir(region))
        layout.ensure()
        return layout

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.blobs.blob_dir.mkdir(parents=True, exist_ok=True)
        marker = self.root / "oci-layout"
        if not marker.exists():
            write_file_atomic(marker, canonical_json({"imageLayoutVersion": "1.0.0"}))
        if not (self.root / "index.json").exists():
            with self.locked():
                if not (self.root / "index.json").exists():
                    self._write_index({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": []})

    @contextmanager
    def locked(self) -> Iterator[None]:
        with open(self.root / "index.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read_index(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / "index.json").read_text())
        return data

    def _write_index(self, index: dict[str, Any]) -> None:
        write_file_atomic(self.root / "index.json", json.dumps(index, indent=2).encode() + b"\n")

    def write_index(self, index: dict[str, Any]) -> None:
        """Replace ``index.json`` (the caller holds ``locked()`` and read the index inside it)."""
        self._write_index(index)

    def refs(self) -> dict[str, str]:
        """ref name (AMI id) -> manifest digest; artifacts and referrers tags (``kiln.store.referrers``)
        are not AMI refs."""
        return {
            m["annotations"][REF_NAME]: m["digest"]
            for m in self.read_index().get("manifests", [])
            if m.get("annotations", {}).get(REF_NAME) and m.get("mediaType", MANIFEST_TYPE) == MANIFEST_TYPE
            and "artifactType" not in m
        }

    def add_ref(self, ref: str, manifest: Descriptor) -> None:
        with self.locked():
            index = self.read_index()
            index["manifests"] = [
                m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) != ref
            ]
            index["manifests"].append(manifest.as_dict({REF_NAME: ref}))
            self._write_index(index)

    def remove_ref(self, ref: str) -> None:
        with self.locked():
            index = self.read_index()
            index["manifests"] = [
                m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) != ref
            ]
            self._write_index(index)

    def write_image(
        self,
        layers: list[Descriptor],
        diff_ids: list[str],
        *,
        architecture: str,
        created: str,
        labels: dict[str, str],
    ) -> tuple[Descriptor, Descriptor]:
        """Write config and manifest blobs; returns (manifest, config) descriptors."""
        config = {
            "architecture": OCI_ARCH.get(architecture, architecture),
            "os": "linux",
            "created": created,
            "config": {"Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": created, "created_by": "kiln"} for _ in layers],
        }
        config_bytes = canonical_json(config)
        with batched_dir_sync():
            config_desc = Descriptor(CONFIG_TYPE, self.blobs.put_bytes(config_bytes), len(config_bytes))
            manifest = {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": config_desc.as_dict(),
                "layers": [layer.as_dict() for layer in layers],
            }
            manifest_bytes = canonical_json(manifest)
            manifest_desc = Descriptor(MANIFEST_TYPE, self.blobs.put_bytes(manifest_bytes), len(manifest_bytes))
        return manifest_desc, config_desc

    def read_json_blob(self, digest: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.blobs.read_bytes(digest))
        return data
