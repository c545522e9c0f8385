"""Lifecycle policies over real builds: previews match what a run frees on disk; in-use AMIs stay."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiln.db.base import utcnow
from kiln.services.builds import records as images
from kiln.services.builds.workflow import create_and_build
from kiln.services.lifecycle.policies import create_policy
from kiln.services.lifecycle.runner import preview, run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")


def _blob_bytes(kiln_home: Path) -> int:
    blobs = kiln_home / "regions" / "local" / "blobs" / "sha256"
    return sum(path.stat().st_size for path in blobs.iterdir())


def _metadata_bytes(kiln_home: Path, ami: str) -> int:
    """An AMI's own blobs besides its snapshot's layers: the OCI manifest and the image config."""
    import json

    from kiln.store.api import get_image

    blobs = kiln_home / "regions" / "local" / "blobs" / "sha256"
    digest = get_image(ami).manifest_digest
    assert digest is not None
    manifest = blobs / digest.split(":", 1)[1]
    config = json.loads(manifest.read_text())["config"]["digest"].split(":", 1)[1]
    return manifest.stat().st_size + (blobs / config).stat().st_size


def _three_builds(make_recipe) -> list[dict]:  # type: ignore[no-untyped-def]
    arns = make_recipe("dd if=/dev/urandom of=/payload bs=64k count=8 2>/dev/null")
    return [
        create_and_build(recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"],
                         distribution_arn=arns["distribution"], tests_enabled=False, use_cache=False)
        for _ in range(3)
    ]


def _keep_newest_policy() -> str:
    return create_policy({
        "name": "keep-newest",
        "executionRole": "arn:aws:iam::123456789012:role/lifecycle",
        "resourceType": "AMI_IMAGE",
        "policyDetails": [{
            "action": {"type": "DELETE", "includeResources": {"amis": True, "snapshots": True}},
            "filter": {"type": "COUNT", "value": 1},
        }],
        "resourceSelection": {"recipes": [{"name": "web", "semanticVersion": "1.x.x"}]},
    })


def test_a_run_frees_exactly_the_bytes_its_preview_promised(make_recipe, kiln_home: Path) -> None:
    from kiln.store.api import describe_images, list_snapshots

    built = _three_builds(make_recipe)
    policy = _keep_newest_policy()
    _, plan = preview(policy, as_of=utcnow())
    promised = plan.summary()["bytes_freed"]
    assert promised > 3 * 64 * 1024  # two images' random payloads, compressed or not
    metadata = sum(_metadata_bytes(kiln_home, image["outputResources"]["amis"][0]["image"]) for image in built[:2])
    before = _blob_bytes(kiln_home)
    execution = run(policy, as_of=utcnow())
    assert execution.state.status.value == "SUCCESS"
    # Snapshots free exactly what the preview said; the AMIs' manifests and configs go with them.
    assert before - _blob_bytes(kiln_home) == promised + metadata
    statuses = [images.get_image(image["arn"])["state"]["status"] for image in built]
    assert statuses == ["DELETED", "DELETED", "AVAILABLE"]
    remaining = {image.id for image in describe_images()}
    assert built[2]["outputResources"]["amis"][0]["image"] in remaining
    assert built[0]["outputResources"]["amis"][0]["image"] not in remaining
    assert not list_snapshots(orphaned=True)
    again = run(policy, as_of=utcnow())  # idempotent: nothing left to do
    assert before - _blob_bytes(kiln_home) == promised + metadata
    assert again.state.status.value == "SUCCESS"


def test_an_ami_in_use_by_an_instance_is_not_deleted(make_recipe) -> None:
    from kiln.runtime import instances
    from kiln.services.ec2.instances import run_instance
    from kiln.store.api import get_image

    built = _three_builds(make_recipe)
    oldest_ami = built[0]["outputResources"]["amis"][0]["image"]
    instance = run_instance(oldest_ami)
    instances.stop(instance.id)  # a stopped instance still uses its AMI
    policy = _keep_newest_policy()
    _, plan = preview(policy, as_of=utcnow())
    [oldest] = [image for image in plan.images if image.decision.resource_id == built[0]["arn"]]
    assert "in use by instance " + instance.id in oldest.amis[0].decision.reason
    run(policy, as_of=utcnow())
    assert get_image(oldest_ami).state == "available"
    assert images.get_image(built[0]["arn"])["state"]["status"] != "DELETED"
    assert images.get_image(built[1]["arn"])["state"]["status"] == "DELETED"
