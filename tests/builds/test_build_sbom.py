"""Every built image has its SBOMs (SPDX and CycloneDX, OCI referrers of its manifest) as soon as it
exists, read from the build instance's layers (what the image was captured from): the very bytes the
image gives when made afresh from its own layers. Distributed copies and a cached build's copy get
their own; an image without a package database gets none."""

from __future__ import annotations

import json
import os

import pytest
from tests.builds.distribution_helpers import build, make_build_inputs
from tests.conftest import Kiln
from tests.inventory.package_dbs import dpkg_stanza, os_release, write

from kiln.store.layout import Layout
from kiln.store.referrers import detach_all, referrers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")

SPDX = "application/spdx+json"
CYCLONEDX = "application/vnd.cyclonedx+json"
NEW_PACKAGE = dpkg_stanza("nginx-light", "1.22.1-9", source="nginx")


@pytest.fixture
def parent_ami(busybox_copy) -> str:
    from kiln.store.api import import_rootfs

    root = busybox_copy("debianish")
    bash = root / "bin" / "bash"
    bash.write_text('#!/bin/busybox sh\nexec /bin/busybox sh "$@"\n')
    bash.chmod(0o755)
    os_release(root, 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    write(root, "var/lib/dpkg/status", dpkg_stanza("libc6", "2.36-9+deb12u4", source="glibc"))
    write(root, "root/new-stanza", "\n" + NEW_PACKAGE)
    return import_rootfs(root, name="debianish-parent")


def stored_sboms(ami: str, region: str = "local") -> dict[str, bytes]:
    layout = Layout.for_region(region)
    manifest = layout.refs()[ami]
    found = {}
    for descriptor in referrers(layout, manifest):
        artifact = layout.read_json_blob(descriptor["digest"])
        assert artifact["subject"]["digest"] == manifest
        found[artifact["artifactType"]] = layout.blobs.read_bytes(artifact["layers"][0]["digest"])
    return found


def made_afresh(kiln: Kiln, ami: str, region: str = "local") -> dict[str, bytes]:
    layout = Layout.for_region(region)
    for digest in detach_all(layout, layout.refs()[ami]):
        layout.blobs.delete(digest)
    found = {}
    for fmt, kind in (("spdx-json", SPDX), ("cyclonedx-json", CYCLONEDX)):
        result = kiln("image", "sbom", ami, "--format", fmt, "--region", region)
        assert result.exit_code == 0, result.stderr
        found[kind] = result.stdout.encode()
    return found


def test_a_build_stores_both_sboms_and_its_copies_theirs(kiln: Kiln, parent_ami: str) -> None:
    from kiln.services.accounts.regions import create_region

    create_region("eu-west-1")
    arns = make_build_inputs(parent_ami, [{"region": "local"}, {"region": "eu-west-1"}],
                             build="cat /root/new-stanza >> /var/lib/dpkg/status")
    image = build(arns)
    assert image["state"]["status"] == "AVAILABLE"
    amis = {(a["region"], a["image"]) for a in image["outputResources"]["amis"]}
    assert {region for region, _ in amis} == {"local", "eu-west-1"}
    for region, ami in sorted(amis):
        stored = stored_sboms(ami, region)
        assert sorted(stored) == [SPDX, CYCLONEDX]
        spdx = json.loads(stored[SPDX])
        assert ami in spdx["name"] and sorted(p["name"] for p in spdx["packages"][1:]) == ["libc6", "nginx-light"]
        assert made_afresh(kiln, ami, region) == stored  # the same image, the same bytes


def test_a_cached_build_copies_the_sboms_and_a_bare_image_has_none(kiln: Kiln, parent_ami: str,
                                                                      busybox_copy) -> None:
    from kiln.store.api import import_rootfs

    arns = make_build_inputs(parent_ami, [{"region": "local"}], build="echo one > /etc/one")
    first = build(arns)
    again = build(arns)
    assert again.get("kilnCachedFrom") == first["arn"]
    for image in (first, again):
        ami = image["outputResources"]["amis"][0]["image"]
        assert sorted(stored_sboms(ami)) == [SPDX, CYCLONEDX]
    bare_root = busybox_copy("bare")
    bash = bare_root / "bin" / "bash"
    bash.write_text('#!/bin/busybox sh\nexec /bin/busybox sh "$@"\n')
    bash.chmod(0o755)
    bare = import_rootfs(bare_root, name="bare-parent")
    plain = build(make_build_inputs(bare, [{"region": "local"}], name="bare", build="echo one > /etc/one"))
    assert plain["state"]["status"] == "AVAILABLE"
    assert stored_sboms(plain["outputResources"]["amis"][0]["image"]) == {}
