"""A distribution that cannot finish leaves nothing half-made: a failing region or account, a process
killed with SIGKILL in the middle; refused configurations change nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.builds.distribution_helpers import CONSUMER, REGIONS, build, make_build_inputs, make_world, tagged_amis

from kiln.errors import KilnError
from kiln.services.builds import records as images

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")


def _snapshots() -> set[str]:
    from kiln.store.api import list_snapshots

    return {snap.id for region in ("local", *REGIONS) for snap in list_snapshots(region)}


def _blobs(region: str) -> list[str]:
    from kiln.store.layout import Layout

    return Layout.for_region(region).blobs.all_digests()


def _made_rows(arn: str) -> list:
    from kiln.services.builds.made import made_by

    return made_by(arn)


def test_an_unknown_target_account_fails_the_build_and_removes_every_copy(parent_ami: str) -> None:
    make_world()
    before = _snapshots()
    arns = make_build_inputs(parent_ami, [
        {"region": "local", "amiDistributionConfiguration": {"targetAccountIds": [CONSUMER]}},
        {"region": "us-east-1", "amiDistributionConfiguration": {"targetAccountIds": [CONSUMER]}},
        {"region": "eu-west-1", "amiDistributionConfiguration": {"targetAccountIds": ["999999999999"]}},
    ])
    with pytest.raises(KilnError, match=r"target account 999999999999 does not exist.*eu-west-1"):
        build(arns)
    [image] = images.list_images(name="web")
    assert image["state"]["status"] == "FAILED"
    assert "999999999999" in image["state"]["reason"] and "eu-west-1" in image["state"]["reason"]
    assert "distributions[2].amiDistributionConfiguration.targetAccountIds" in image["state"]["reason"]
    assert tagged_amis(image["arn"]) == []
    assert _snapshots() == before
    assert _made_rows(image["arn"]) == []
    assert image["outputResources"]["amis"] == []
    assert all(_blobs(region) == [] for region in REGIONS)  # what was linked into them went with the copies


def test_a_name_taken_in_a_target_region_fails_the_build_and_removes_every_copy(parent_ami: str) -> None:
    from kiln.store.api import import_rootfs, layer_dirs

    make_world()
    taken = import_rootfs(layer_dirs(parent_ami)[0], name="web-east", region="us-east-1")
    before = _snapshots()
    arns = make_build_inputs(parent_ami, [
        {"region": "local", "amiDistributionConfiguration": {"targetAccountIds": [CONSUMER]}},
        {"region": "eu-west-1"},
        {"region": "us-east-1", "amiDistributionConfiguration": {"name": "web-east"}},
    ])
    with pytest.raises(KilnError, match="us-east-1"):
        build(arns)
    [image] = images.list_images(name="web")
    assert image["state"]["status"] == "FAILED" and taken in image["state"]["reason"]
    assert tagged_amis(image["arn"]) == []
    assert _snapshots() == before


def test_a_kill_in_the_middle_of_a_distribution_leaves_nothing_after_restart(
        kiln, parent_ami: str, kiln_home: Path, tmp_path: Path) -> None:
    from kiln.db.engine import reset_engines

    make_world()
    before = _snapshots()
    arns = make_build_inputs(parent_ami, [
        {"region": "us-east-1", "amiDistributionConfiguration": {"targetAccountIds": [CONSUMER]}},
        {"region": "eu-west-1", "s3ExportConfiguration": {
            "roleName": "vmimport", "diskImageFormat": "RAW", "s3Bucket": "golden"}},
    ])
    held = tmp_path / "held"
    # The process holds after its second copy is registered, before it records it: the first copy is
    # recorded MADE, the second exists only as a MAKING row and an AMI carrying the build's tag.
    process = subprocess.Popen(
        [sys.executable, "-m", "kiln", "image", "create", "--recipe", arns["recipe"], "--infrastructure",
         arns["infrastructure"], "--distribution", arns["distribution"], "--no-tests"],
        env={**os.environ, "KILN_HOME": str(kiln_home), "KILN_TEST_DISTRIBUTION_HOLD": f"2:{held}"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not held.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    [image] = images.list_images(name="web")
    assert image["state"]["status"] == "DISTRIBUTING"
    made = _made_rows(image["arn"])
    assert [(m.region, m.account_id, m.status) for m in made] == [
        ("us-east-1", "123456789012", "MADE"), ("us-east-1", CONSUMER, "MAKING")]
    assert len(tagged_amis(image["arn"])) == 3  # the output AMI and both copies
    reset_engines()  # the next kiln command opens the database afresh, which runs recovery
    assert kiln("image", "builds").exit_code == 0
    image = images.get_image(image["arn"])
    assert image["state"]["status"] == "FAILED" and image["state"]["reason"].startswith("interrupted")
    assert tagged_amis(image["arn"]) == []
    assert _snapshots() == before
    assert _made_rows(image["arn"]) == []
    assert not (kiln_home / "s3").exists() or not any((kiln_home / "s3").rglob("*.raw"))


def test_unsupported_fields_are_refused_at_build_start_and_nothing_is_recorded(parent_ami: str) -> None:
    make_world()
    arns = make_build_inputs(parent_ami, [
        {"region": "local"},
        {"region": "us-east-1", "containerDistributionConfiguration": {
            "targetRepository": {"service": "ECR", "repositoryName": "web"}}},
    ])
    with pytest.raises(KilnError) as refused:
        build(arns)
    assert "containerDistributionConfiguration is not supported yet" in str(refused.value)
    assert "distributions[1].containerDistributionConfiguration" in (refused.value.location or "")
    assert images.list_images(name="web") == []


def test_a_configuration_naming_an_unknown_region_is_refused(kiln, tmp_path: Path) -> None:
    make_world()
    body = tmp_path / "dist.json"
    body.write_text('{"name": "far-away", "distributions": [{"region": "local"}, {"region": "ap-south-2"}]}')
    result = kiln("distribution", "create", "--cli-input-json", f"file://{body}")
    assert result.exit_code != 0
    assert "ap-south-2" in result.stderr and "distributions[1].region" in result.stderr
    assert "Traceback" not in result.stderr
    listed = kiln("distribution", "list", "--output", "json")
    assert "far-away" not in listed.stdout


def test_build_region_must_exist(kiln, parent_ami: str) -> None:
    make_world()
    arns = make_build_inputs(parent_ami, [{"region": "local"}])
    result = kiln("image", "create", "--recipe", arns["recipe"], "--infrastructure", arns["infrastructure"],
                  "--region", "mars-north-1")
    assert result.exit_code != 0 and "mars-north-1" in result.stderr and "Traceback" not in result.stderr
    assert images.list_images(name="web") == []



def test_pipeline_start_checks_its_region(kiln) -> None:
    make_world()
    pipeline = "arn:aws:imagebuilder:local:123456789012:image-pipeline/web"
    unknown = kiln("pipeline", "start", pipeline, "--region", "mars-north-1")
    assert unknown.exit_code != 0 and "region mars-north-1 does not exist" in unknown.stderr
    elsewhere = kiln("pipeline", "start", pipeline, "--region", "us-east-1")
    assert elsewhere.exit_code != 0 and "is not in region us-east-1" in elsewhere.stderr
    assert "Traceback" not in unknown.stderr + elsewhere.stderr
