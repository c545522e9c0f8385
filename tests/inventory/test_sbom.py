"""``kiln image packages|sbom`` on AMIs of the store: full records, valid SPDX 2.3 and CycloneDX 1.6
(checked by spdx-tools and cyclonedx-python-lib), the same bytes every time, the SBOM stored as an OCI
referrer of the image's manifest, and gone (no dangling entry, no leaked blob) once the AMI is."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from tests.conftest import Kiln
from tests.inventory.package_dbs import dpkg_stanza, os_release, write

from kiln.home import region_dir
from kiln.store.layout import Layout
from kiln.store.referrers import EMPTY, detach_all, live_referrer_blobs, referrers

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION="12 (bookworm)"\n'
SPDX = "application/spdx+json"
CYCLONEDX = "application/vnd.cyclonedx+json"


@pytest.fixture
def debian_ami(kiln: Kiln, busybox_copy: Callable[[str], Path]) -> str:
    root = busybox_copy("debianish")
    os_release(root, DEBIAN)
    write(root, "var/lib/dpkg/status", "".join([
        dpkg_stanza("libc6", "2.36-9+deb12u4", source="glibc"),
        dpkg_stanza("bash", "5.2.15-2+b2", source="bash (5.2.15-2)"),
        dpkg_stanza("tzdata", "2024a-0+deb12u1", arch="all"),
        dpkg_stanza("gone", "1.0", status="purge ok not-installed"),
    ]))
    result = kiln("image", "import", str(root), "--name", "debianish")
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def manifest_of(ami: str) -> str:
    return Layout.for_region("local").refs()[ami]


def index_entries() -> list[dict]:
    return json.loads((region_dir("local") / "index.json").read_text())["manifests"]


def test_packages_of_an_ami(kiln: Kiln, debian_ami: str) -> None:
    text = kiln("image", "packages", debian_ami)
    assert text.exit_code == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["PACKAGE", "VERSION", "ARCH", "SOURCE", "SOURCE", "VERSION"]
    assert [line.split()[0] for line in lines[1:]] == ["bash", "libc6", "tzdata"]
    records = json.loads(kiln("image", "packages", debian_ami, "--output", "json").stdout)["imagePackageList"]
    libc = next(r for r in records if r["name"] == "libc6")
    assert libc == {"name": "libc6", "version": "2.36-9+deb12u4", "architecture": "amd64", "source_name": "glibc",
                    "source_version": "2.36-9+deb12u4", "ecosystem": "Debian:12",
                    "purl": "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"}


def test_spdx_is_valid_stable_and_stored_as_a_referrer(kiln: Kiln, debian_ami: str, tmp_path: Path) -> None:
    first = kiln("image", "sbom", debian_ami, "--format", "spdx-json", "-o", str(tmp_path / "a.spdx.json"))
    assert first.exit_code == 0, first.stderr
    data = (tmp_path / "a.spdx.json").read_bytes()
    document = parse_file(str(tmp_path / "a.spdx.json"))
    assert validate_full_spdx_document(document) == []
    assert sorted(p.name for p in document.packages) == ["bash", "debianish", "libc6", "tzdata"]
    parsed = json.loads(data)
    assert manifest_of(debian_ami).partition(":")[2] in parsed["documentNamespace"]
    # the same bytes again (from the stored artifact, and freshly made once the artifact is gone)
    assert kiln("image", "sbom", debian_ami).stdout.encode() == data
    layout = Layout.for_region("local")
    listing = [e for e in index_entries() if e["annotations"].get("org.opencontainers.image.ref.name", "")
               == "sha256-" + manifest_of(debian_ami).partition(":")[2]]
    assert len(listing) == 1 and listing[0]["mediaType"] == "application/vnd.oci.image.index.v1+json"
    referrers = layout.read_json_blob(listing[0]["digest"])["manifests"]
    assert [r["artifactType"] for r in referrers] == [SPDX]
    artifact = layout.read_json_blob(referrers[0]["digest"])
    assert artifact["subject"]["digest"] == manifest_of(debian_ami)
    assert artifact["artifactType"] == SPDX and artifact["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert layout.blobs.read_bytes(artifact["layers"][0]["digest"]) == data
    assert any(e["digest"] == referrers[0]["digest"] and e.get("artifactType") == SPDX for e in index_entries())
    if shutil.which("skopeo"):  # OCI tooling reads the referrers tag and still the image by its AMI id
        tag = "sha256-" + manifest_of(debian_ami).partition(":")[2]
        raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{region_dir('local')}:{tag}"], check=True,
                             capture_output=True).stdout
        assert json.loads(raw)["manifests"][0]["artifactType"] == SPDX
        subprocess.run(["skopeo", "inspect", f"oci:{region_dir('local')}:{debian_ami}"], check=True,
                       capture_output=True)
    for digest in detach_all(layout, manifest_of(debian_ami)):
        layout.blobs.delete(digest)
    again = kiln("image", "sbom", debian_ami, "--format", "spdx-json")
    assert again.stdout.encode() == data


def test_cyclonedx_is_valid_and_stable(kiln: Kiln, debian_ami: str) -> None:
    first = kiln("image", "sbom", debian_ami, "--format", "cyclonedx-json")
    assert first.exit_code == 0, first.stderr
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(first.stdout) is None
    bom = json.loads(first.stdout)
    assert bom["specVersion"] == "1.6" and bom["serialNumber"].startswith("urn:uuid:")
    purls = [c.get("purl") for c in bom["components"] if c["type"] == "library"]
    assert "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12&upstream=bash%405.2.15-2" in purls
    assert kiln("image", "sbom", debian_ami, "--format", "cyclonedx-json").stdout == first.stdout
    # both SBOMs are referrers of the one manifest now
    kiln("image", "sbom", debian_ami, "--format", "spdx-json")
    layout = Layout.for_region("local")
    assert sorted(r["artifactType"] for r in referrers(layout, manifest_of(debian_ami))) == [SPDX, CYCLONEDX]


def test_deregister_takes_the_sboms_and_gc_leaves_nothing(kiln: Kiln, debian_ami: str) -> None:
    layout = Layout.for_region("local")
    manifest = manifest_of(debian_ami)
    kiln("image", "sbom", debian_ami, "--format", "spdx-json")
    kiln("image", "sbom", debian_ami, "--format", "cyclonedx-json")
    artifact_blobs = live_referrer_blobs(layout) - {EMPTY.digest}
    assert len(artifact_blobs) == 5  # the tag's index, two manifests, two SBOMs
    assert kiln("store", "fsck").exit_code == 0
    result = kiln("image", "deregister", debian_ami, "--delete-snapshots")
    assert result.exit_code == 0, result.stderr
    assert index_entries() == []
    assert not any(layout.blobs.exists(d) for d in artifact_blobs)
    fsck = kiln("store", "fsck", "--output", "json")
    assert fsck.exit_code == 0, fsck.stdout + fsck.stderr
    assert manifest not in set(layout.blobs.all_digests())


def test_image_without_a_package_database(kiln: Kiln, busybox_dir: Path) -> None:
    ami = kiln("image", "import", str(busybox_dir), "--name", "bare").stdout.strip()
    result = kiln("image", "sbom", ami)
    assert result.exit_code == 1
    assert f"no package database found in {ami} (tried /var/lib/dpkg/status, /var/lib/dpkg/status.d" in result.stderr
    assert "Traceback" not in result.stderr
    assert [e for e in index_entries() if "artifactType" in e] == []
    refused = kiln("image", "sbom", ami, "--format", "spdx-tag-value")
    assert refused.exit_code != 0 and "unknown SBOM format 'spdx-tag-value'" in refused.stderr


def test_gc_drops_referrers_a_deregistration_left(kiln: Kiln, debian_ami: str, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = Layout.for_region("local")
    kiln("image", "sbom", debian_ami, "--format", "spdx-json")
    artifact_blobs = live_referrer_blobs(layout) - {EMPTY.digest}
    # a deregistration interrupted after its commit, before it dropped the referrers (a crash)
    with monkeypatch.context() as patch:
        patch.setattr("kiln.store.image_ops.detach_all", lambda layout, subject: [])
        assert kiln("image", "deregister", debian_ami).exit_code == 0
    fsck = kiln("store", "fsck")
    assert fsck.exit_code != 0 and "no registered AMI's manifest" in fsck.stdout + fsck.stderr
    gc = kiln("store", "gc", "--grace-seconds", "0")
    assert gc.exit_code == 0, gc.stderr
    assert [e for e in index_entries() if "artifactType" in e or e["mediaType"].endswith("index.v1+json")] == []
    assert not any(layout.blobs.exists(d) for d in artifact_blobs)
    assert kiln("store", "fsck").exit_code == 0


def test_both_sboms_in_one_index_update_replace_the_earlier_ones(kiln: Kiln, debian_ami: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from kiln.services.inventory.artifacts import write_sboms

    layout = Layout.for_region("local")
    manifest = manifest_of(debian_ami)
    assert write_sboms(debian_ami, "local") == [SPDX, CYCLONEDX]
    before = {m["artifactType"]: m["digest"] for m in referrers(layout, manifest)}
    writes: list[int] = []
    original = Layout.write_index
    monkeypatch.setattr(Layout, "write_index", lambda self, index: (writes.append(1), original(self, index))[1])
    stale_spdx = kiln("image", "sbom", debian_ami, "--format", "spdx-json")  # same bytes: same manifest
    assert stale_spdx.exit_code == 0
    writes.clear()
    write_sboms(debian_ami, "local")
    assert len(writes) == 1  # both artifacts and the referrers tag in one index.json write
    listed = referrers(layout, manifest)
    assert {m["artifactType"]: m["digest"] for m in listed} == before
    assert len([m for m in index_entries() if m.get("artifactType")]) == 2
    assert kiln("store", "fsck").exit_code == 0


def test_sboms_are_compact_json_in_the_documents_order() -> None:
    """Both formats are written compact (one line, no spaces between tokens: what json's C encoder
    makes) in the documents' own key order, non-ASCII kept as UTF-8; the same subject, the same bytes."""
    from datetime import UTC, datetime

    from kiln.model.packages import InstalledPackage
    from kiln.services.inventory.sbom_cyclonedx import cyclonedx_json
    from kiln.services.inventory.sbom_spdx import spdx_json
    from kiln.services.inventory.subject import SbomSubject
    from kiln.store.package_db import Inventory, OsRelease

    packages = tuple(InstalledPackage(f"pkg-{n}", f"1.{n}", "amd64", "src", "1", "Debian:12",
                                      f"pkg:deb/debian/pkg-{n}@1.{n}") for n in range(50))
    inventory = Inventory(OsRelease("debian", "12", "Débian 12"), ("var/lib/dpkg/status",), packages)
    subject = SbomSubject("ami-0123456789abcdef0", "naïve", "local", "amd64", "sha256:" + "ab" * 32,
                          datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), inventory)
    for make in (spdx_json, cyclonedx_json):
        data = make(subject)
        assert data == make(subject)
        assert data.endswith(b"}\n") and data.count(b"\n") == 1
        parsed = json.loads(data)
        assert data == json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        assert "naïve".encode() in data and b"\\u" not in data
    assert list(json.loads(spdx_json(subject)))[:3] == ["spdxVersion", "dataLicense", "SPDXID"]
    assert list(json.loads(cyclonedx_json(subject)))[:2] == ["$schema", "bomFormat"]
