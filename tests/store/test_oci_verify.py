"""Importing an OCI layout or archive verifies every descriptor, as the OCI image spec requires: the
manifest named by index.json, the config and each layer named by the manifest (digest and size), and
the config's rootfs.diff_ids against the uncompressed layers. A wrong one is refused, named, with
nothing registered."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.store.conftest import OciLayout, oci_layout

from kiln.store import api
from kiln.store.layout import LAYER_GZIP


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("etc/motd")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    return buffer.getvalue()


TAR = _layer_tar()
LAYER = gzip.compress(TAR, mtime=0)
DIFF_ID = _sha(TAR)


def _layout(tmp_path: Path, diff_id: str = DIFF_ID, **edits: Any) -> OciLayout:
    return oci_layout(tmp_path / "oci", LAYER, LAYER_GZIP, diff_id, **edits)


def _tamper(path: Path) -> str:
    """Flip one byte of a blob (its size unchanged); returns the digest of what it now holds."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return _sha(bytes(data))


def test_a_layout_with_every_descriptor_right_imports(tmp_path: Path, kiln: Callable[..., Any]) -> None:
    layout = _layout(tmp_path)
    result = kiln("image", "import", str(layout.root), "--name", "good")
    assert result.exit_code == 0, result.stderr
    [layer] = api.image_layers(result.stdout.strip())
    assert layer.diff_id == DIFF_ID


def test_manifest_digest_not_matching_the_index(tmp_path: Path, refused_import: Callable[..., str]) -> None:
    layout = _layout(tmp_path)
    actual = _tamper(layout.blob(layout.manifest))
    assert refused_import(layout.root) == (
        f"index.json manifests[0] ({layout.manifest}): digest mismatch: expected {layout.manifest}, actual {actual}"
    )


def test_manifest_size_not_matching_the_index(tmp_path: Path, refused_import: Callable[..., str]) -> None:
    def grow(index: dict[str, Any]) -> None:
        index["manifests"][0]["size"] += 1

    layout = _layout(tmp_path, index_edit=grow)
    size = layout.blob(layout.manifest).stat().st_size
    assert refused_import(layout.root) == (
        f"index.json manifests[0] ({layout.manifest}): size mismatch: expected {size + 1}, actual {size}"
    )


def test_layer_with_a_wrong_size(tmp_path: Path, refused_import: Callable[..., str]) -> None:
    def grow(manifest: dict[str, Any]) -> None:
        manifest["layers"][0]["size"] += 7

    layout = _layout(tmp_path, manifest_edit=grow)
    assert refused_import(layout.root) == (
        f"manifest {layout.manifest} layers[0] ({layout.layer}): size mismatch: "
        f"expected {len(LAYER) + 7}, actual {len(LAYER)}"
    )


def test_layer_with_tampered_bytes(tmp_path: Path, refused_import: Callable[..., str]) -> None:
    layout = _layout(tmp_path)
    actual = _tamper(layout.blob(layout.layer))
    assert refused_import(layout.root) == (
        f"manifest {layout.manifest} layers[0] ({layout.layer}): digest mismatch: "
        f"expected {layout.layer}, actual {actual}"
    )


def test_config_with_a_wrong_size(tmp_path: Path, refused_import: Callable[..., str]) -> None:
    def shrink(manifest: dict[str, Any]) -> None:
        manifest["config"]["size"] -= 1

    layout = _layout(tmp_path, manifest_edit=shrink)
    size = layout.blob(layout.config).stat().st_size
    assert refused_import(layout.root) == (
        f"manifest {layout.manifest} config ({layout.config}): size mismatch: expected {size - 1}, actual {size}"
    )


def test_config_with_tampered_bytes(tmp_path: Path, refused_import: Callable[..., str]) -> None:
    layout = _layout(tmp_path)
    actual = _tamper(layout.blob(layout.config))
    assert refused_import(layout.root) == (
        f"manifest {layout.manifest} config ({layout.config}): digest mismatch: "
        f"expected {layout.config}, actual {actual}"
    )


@pytest.mark.parametrize("archive", [False, True], ids=["layout", "oci-archive"])
def test_a_diff_id_not_matching_the_uncompressed_layer(
    tmp_path: Path, archive: bool, refused_import: Callable[..., str]
) -> None:
    wrong = _sha(b"another layer")
    layout = _layout(tmp_path, diff_id=wrong)
    source = layout.root
    if archive:
        source = tmp_path / "image.tar"
        with tarfile.open(source, "w") as tar:
            for name in ("oci-layout", "index.json", "blobs"):
                tar.add(layout.root / name, arcname=name)
    assert refused_import(source) == (
        f"config {layout.config} rootfs.diff_ids[0]: does not match uncompressed layer {layout.layer}: "
        f"expected {wrong}, actual {DIFF_ID}"
    )


def test_diff_ids_fewer_than_the_layers(tmp_path: Path, refused_import: Callable[..., str]) -> None:
    def drop(config: dict[str, Any]) -> None:
        config["rootfs"]["diff_ids"] = []

    layout = _layout(tmp_path, config_edit=drop)
    assert refused_import(layout.root) == f"config {layout.config} rootfs.diff_ids: lists 0 diff_ids for 1 layers"


def test_a_digest_that_is_not_a_sha256_digest_names_no_file(
    tmp_path: Path, refused_import: Callable[..., str]
) -> None:
    def escape(manifest: dict[str, Any]) -> None:
        manifest["layers"][0]["digest"] = "sha256:../../../../etc/passwd"

    layout = _layout(tmp_path, manifest_edit=escape)
    assert refused_import(layout.root) == (
        f"manifest {layout.manifest} layers[0]: digest 'sha256:../../../../etc/passwd' is not a sha256 digest"
    )
