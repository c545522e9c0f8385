"""The region is a real OCI layout (skopeo reads it), and every export format is readable."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from kiln.home import region_dir
from kiln.store import api


def _skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True).stdout


def test_skopeo_inspect_and_copy(tmp_path: Path, base_ami: str) -> None:
    info = json.loads(_skopeo("inspect", f"oci:{region_dir()}:{base_ami}"))
    layers = [layer.digest for layer in api.image_layers(base_ami)]
    assert info["Layers"] == layers
    assert info["Labels"]["kiln.image-id"] == base_ami
    assert info["Os"] == "linux"
    _skopeo("copy", f"oci:{region_dir()}:{base_ami}", f"dir:{tmp_path / 'copy'}")
    manifest = json.loads((tmp_path / "copy" / "manifest.json").read_text())
    assert [layer["digest"] for layer in manifest["layers"]] == layers
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"


def test_oci_layout_files(base_ami: str) -> None:
    root = region_dir()
    assert json.loads((root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((root / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == [base_ami]


def test_oci_archive_export_reimports(tmp_path: Path, base_ami: str) -> None:
    archive = api.export_image(base_ami, "oci-archive", tmp_path / "image.tar")
    info = json.loads(_skopeo("inspect", f"oci-archive:{archive}"))
    assert info["Layers"] == [layer.digest for layer in api.image_layers(base_ami)]
    again = api.import_rootfs(archive, name="reimported")
    assert [x.digest for x in api.image_layers(again)] == [x.digest for x in api.image_layers(base_ami)]


def test_import_gzip_oci_layout_made_by_skopeo(tmp_path: Path, base_ami: str) -> None:
    target = tmp_path / "gz-layout"
    _skopeo("copy", "--dest-compress-format", "gzip", f"oci:{region_dir()}:{base_ami}", f"oci:{target}:x")
    ami = api.import_rootfs(target, name="from-gzip-layout")
    assert api.image_layers(ami)[0].media_type.endswith("tar+zstd")
    assert (api.layer_dirs(ami)[0] / "bin" / "busybox").exists()


def test_import_rootfs_tarballs(tmp_path: Path, busybox_dir: Path) -> None:
    plain = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", str(busybox_dir), "-cf", str(plain), "."], check=True)
    zst = tmp_path / "rootfs.tar.zst"
    subprocess.run(["zstd", "-q", str(plain), "-o", str(zst)], check=True)
    gz = tmp_path / "rootfs.tar.gz"
    subprocess.run(["tar", "-C", str(busybox_dir), "-czf", str(gz), "."], check=True)
    amis = [api.import_rootfs(src, name=f"tarball-{i}") for i, src in enumerate((plain, zst, gz))]
    for ami in amis:
        assert (api.layer_dirs(ami)[0] / "etc" / "os-release").read_text().count("ID=busybox") == 1


def test_export_tar_is_flattened(tmp_path: Path, base_ami: str) -> None:
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "extra").write_text("x\n")
    child = api.create_image_from_upper(base_ami, upper, name="child")
    out = api.export_image(child, "tar", tmp_path / "flat.tar")
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert {"etc/extra", "bin/busybox", "etc/passwd"} <= names


@pytest.mark.parametrize(
    ("fmt", "qemu_name"), [("raw", "raw"), ("qcow2", "qcow2"), ("vmdk", "vmdk"), ("vhd", "vpc")]
)
def test_disk_exports(tmp_path: Path, base_ami: str, fmt: str, qemu_name: str) -> None:
    out = api.export_image(base_ami, fmt, tmp_path / f"disk.{fmt}")
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(out)], check=True, capture_output=True, text=True
        ).stdout
    )
    assert info["format"] == qemu_name
    if fmt == "raw":
        listing = subprocess.run(
            ["debugfs", "-R", "cat /etc/os-release", str(out)], check=True, capture_output=True, text=True
        ).stdout
        assert "ID=busybox" in listing


def test_gzip_import_is_a_valid_mixed_image(tmp_path: Path, busybox_dir: Path) -> None:
    base = api.import_rootfs(busybox_dir, name="gz-base", compression="gzip")
    assert api.image_layers(base)[0].media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "hello").write_text("hi\n")
    child = api.create_image_from_upper(base, upper, name="zstd-child")
    info = json.loads(_skopeo("inspect", f"oci:{region_dir()}:{child}"))
    assert len(info["Layers"]) == 2
    _skopeo("copy", f"oci:{region_dir()}:{child}", f"dir:{tmp_path / 'copy'}")
    assert (api.layer_dirs(child)[1] / "hello").read_text() == "hi\n"


def test_copy_image_to_another_region(base_ami: str) -> None:
    copy = api.copy_image(base_ami, region="eu-west-1", name="copied")
    info = api.get_image(copy, "eu-west-1")
    assert info.to_ec2()["SourceImageId"] == base_ami and info.to_ec2()["SourceImageRegion"] == "local"
    assert [x.digest for x in api.image_layers(copy, "eu-west-1")] == [
        x.digest for x in api.image_layers(base_ami)
    ]
    assert (
        json.loads(_skopeo("inspect", f"oci:{region_dir('eu-west-1')}:{copy}"))["Labels"]["kiln.image-id"]
        == copy
    )
    assert api.describe_images() and [i.id for i in api.describe_images("eu-west-1")] == [copy]
    assert api.get_image(copy, "eu-west-1").snapshot_ids != api.get_image(base_ami).snapshot_ids
    assert api.fsck("eu-west-1").ok
