"""An AMI's SBOMs go where the AMI goes: ``kiln image export --format oci-archive|oci`` carries them as
referrers of the exported manifest (skopeo reads the referrers tag and the image by its AMI id), and
CopyImage gives the copy its own SBOMs (subject: the copy's manifest; the same packages)."""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import Kiln
from tests.inventory.package_dbs import dpkg_stanza, os_release, write

from kiln.store.layout import Layout
from kiln.store.referrers import detach_all, referrers

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION="12 (bookworm)"\n'
SPDX = "application/spdx+json"
CYCLONEDX = "application/vnd.cyclonedx+json"
REF_NAME = "org.opencontainers.image.ref.name"


@pytest.fixture
def debian_ami(kiln: Kiln, busybox_copy: Callable[[str], Path]) -> str:
    root = busybox_copy("debianish")
    os_release(root, DEBIAN)
    write(root, "var/lib/dpkg/status", dpkg_stanza("libc6", "2.36-9+deb12u4", source="glibc")
          + dpkg_stanza("bash", "5.2.15-2+b2", source="bash (5.2.15-2)"))
    result = kiln("image", "import", str(root), "--name", "debianish")
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def _sboms(kiln: Kiln, ami: str, region: str = "local") -> dict[str, bytes]:
    found = {}
    for fmt, kind in (("spdx-json", SPDX), ("cyclonedx-json", CYCLONEDX)):
        result = kiln("image", "sbom", ami, "--format", fmt, "--region", region)
        assert result.exit_code == 0, result.stderr
        found[kind] = result.stdout.encode()
    return found


def _skopeo(*args: str) -> bytes:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True).stdout


@pytest.mark.parametrize("fmt", ["oci-archive", "oci"])
def test_export_carries_the_sboms_as_referrers(kiln: Kiln, debian_ami: str, tmp_path: Path, fmt: str) -> None:
    sboms = _sboms(kiln, debian_ami)
    manifest = Layout.for_region("local").refs()[debian_ami]
    out = tmp_path / ("image.tar" if fmt == "oci-archive" else "layout")
    result = kiln("image", "export", debian_ami, "--format", fmt, "-o", str(out), "--output", "json")
    assert result.exit_code == 0, result.stderr
    if fmt == "oci-archive":
        layout_dir = tmp_path / "unpacked"
        with tarfile.open(out) as tar:
            tar.extractall(layout_dir, filter="data")
        transport = f"oci-archive:{out}"
    else:
        layout_dir, transport = out, f"oci:{out}"
    index = json.loads((layout_dir / "index.json").read_text())
    first = index["manifests"][0]
    assert (first["digest"], first["annotations"][REF_NAME]) == (manifest, debian_ami)  # the image comes first
    tag = "sha256-" + manifest.partition(":")[2]
    tags = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == tag]
    assert len(tags) == 1
    exported = Layout(layout_dir)
    listed = referrers(exported, manifest)
    assert sorted(r["artifactType"] for r in listed) == [SPDX, CYCLONEDX]
    for descriptor in listed:
        artifact = exported.read_json_blob(descriptor["digest"])
        assert artifact["subject"]["digest"] == manifest
        assert exported.blobs.read_bytes(artifact["layers"][0]["digest"]) == sboms[artifact["artifactType"]]
        assert any(m["digest"] == descriptor["digest"] for m in index["manifests"])  # oras-style walkers
    # OCI tooling: the referrers tag index, and the image by its AMI id
    raw = json.loads(_skopeo("inspect", "--raw", f"{transport}:{tag}"))
    assert sorted(m["artifactType"] for m in raw["manifests"]) == [SPDX, CYCLONEDX]
    info = json.loads(_skopeo("inspect", f"{transport}:{debian_ami}"))
    assert info["Labels"]["kiln.image-id"] == debian_ami
    again = kiln("image", "import", str(out), "--name", "reimported")  # kiln's import takes the image
    assert again.exit_code == 0, again.stderr


def test_export_of_an_image_without_sboms_holds_the_image_alone(kiln: Kiln, busybox_dir: Path,
                                                                 tmp_path: Path) -> None:
    ami = kiln("image", "import", str(busybox_dir), "--name", "bare").stdout.strip()
    out = tmp_path / "layout"
    assert kiln("image", "export", ami, "--format", "oci", "-o", str(out)).exit_code == 0
    index = json.loads((out / "index.json").read_text())
    assert [m["annotations"][REF_NAME] for m in index["manifests"]] == [ami]
    assert json.loads(_skopeo("inspect", f"oci:{out}"))["Labels"]["kiln.image-id"] == ami
    refused = kiln("image", "export", ami, "--format", "oci", "-o", str(out))  # not empty now
    assert refused.exit_code == 1 and "new or empty directory" in refused.stderr and str(out) in refused.stderr
    assert "Traceback" not in refused.stderr


def test_copy_image_gets_its_own_sboms(kiln: Kiln, debian_ami: str) -> None:
    sboms = _sboms(kiln, debian_ami)
    result = kiln("image", "copy", debian_ami, "--region", "eu-west-1", "--name", "copied", "--output", "json")
    assert result.exit_code == 0, result.stderr
    copy = json.loads(result.stdout)["ImageId"]
    layout = Layout.for_region("eu-west-1")
    manifest = layout.refs()[copy]
    listed = referrers(layout, manifest)
    assert sorted(r["artifactType"] for r in listed) == [SPDX, CYCLONEDX]
    stored = {}
    for descriptor in listed:
        artifact = layout.read_json_blob(descriptor["digest"])
        assert artifact["subject"]["digest"] == manifest
        stored[artifact["artifactType"]] = layout.blobs.read_bytes(artifact["layers"][0]["digest"])
    spdx = json.loads(stored[SPDX])
    assert copy in spdx["name"] and "eu-west-1" in spdx["documentNamespace"]
    packages = sorted(p["name"] for p in spdx["packages"][1:])
    assert packages == sorted(p["name"] for p in json.loads(sboms[SPDX])["packages"][1:]) == ["bash", "libc6"]
    assert _sboms(kiln, copy, "eu-west-1") == stored  # answered as stored
    for digest in detach_all(layout, manifest):
        layout.blobs.delete(digest)
    assert _sboms(kiln, copy, "eu-west-1") == stored  # and the same bytes made afresh


def test_copy_of_an_image_without_sboms_gets_none(kiln: Kiln, debian_ami: str) -> None:
    result = kiln("image", "copy", debian_ami, "--region", "eu-west-1", "--name", "copied", "--output", "json")
    assert result.exit_code == 0, result.stderr
    copy = json.loads(result.stdout)["ImageId"]
    layout = Layout.for_region("eu-west-1")
    assert referrers(layout, layout.refs()[copy]) == []
