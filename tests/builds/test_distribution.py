"""A build's distribution across regions and accounts, end to end over a busybox parent: copies, names
from templates, tags, launch permissions evaluated live, incremental blob copies, S3 exports."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from tests.builds.distribution_helpers import (
    CONSUMER,
    OUTSIDER,
    PARTNER,
    build,
    make_build_inputs,
    make_world,
)

from kiln.services.builds import records as images

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")
BUILD_DATE = r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z"


def _distributions() -> list[dict]:
    return [
        {"region": "local", "amiDistributionConfiguration": {
            "name": "web-{{ imagebuilder:buildDate }}-{{imagebuilder:buildVersion}}",
            "amiTags": {"team": "platform"},
            "targetAccountIds": [CONSUMER],
            "launchPermission": {"userIds": [PARTNER]},
        }},
        {"region": "us-east-1",
         "amiDistributionConfiguration": {
             "name": "web-east-{{ imagebuilder:buildVersion }}-{{ imagebuilder:buildDate }}",
             "description": "web for the east",
             "amiTags": {"team": "east"},
             "targetAccountIds": [CONSUMER],
             "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
             "launchPermission": {"userIds": [PARTNER]},
         },
         "licenseConfigurationArns": ["arn:aws:license-manager:us-east-1:123456789012:license-configuration:lic-0123"],
         "fastLaunchConfigurations": [{"enabled": False}]},
        {"region": "eu-west-1"},
    ]


def test_a_build_distributes_to_every_region_and_account(kiln, parent_ami: str) -> None:
    from kiln.ec2_errors import InvalidAMIIDNotFound, NotAuthorizedForImages
    from kiln.services.ec2.images import check_launchable, describe_image, describe_images

    make_world()
    arns = make_build_inputs(parent_ami, _distributions())
    image = build(arns)
    assert image["state"]["status"] == "AVAILABLE"
    amis = image["outputResources"]["amis"]
    assert [(a["region"], a["accountId"]) for a in amis] == [
        ("local", "123456789012"), ("local", CONSUMER),
        ("us-east-1", "123456789012"), ("us-east-1", CONSUMER), ("eu-west-1", "123456789012"),
    ]
    assert len({a["image"] for a in amis}) == 5
    by = {(a["region"], a["accountId"]): a for a in amis}
    assert re.fullmatch(f"web-{BUILD_DATE}-1", by["local", CONSUMER]["name"])
    assert re.fullmatch(f"web-east-1-{BUILD_DATE}", by["us-east-1", CONSUMER]["name"])
    assert by["us-east-1", "123456789012"]["description"] == "web for the east"
    assert "description" not in by["eu-west-1", "123456789012"]  # copies get no default description
    # Each copy is its owner's, in its region, tagged, with its own snapshot over the same blobs.
    east = describe_image(by["us-east-1", CONSUMER]["image"], "us-east-1", account=CONSUMER)
    assert east["OwnerId"] == CONSUMER and east["Name"] == by["us-east-1", CONSUMER]["name"]
    tags = {t["Key"]: t["Value"] for t in east["Tags"]}
    assert tags["team"] == "east" and tags["Ec2ImageBuilderArn"] == image["arn"]
    home = describe_image(by["local", "123456789012"]["image"], "local")
    assert east["SourceImageRegion"] == "us-east-1"
    assert east["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] != home["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    # Launch permissions, evaluated live: the partner may launch the owner's copy, an outsider may not
    # even see it; the consumer launches its own copy.
    own_east = by["us-east-1", "123456789012"]["image"]
    check_launchable(own_east, "us-east-1", account=PARTNER)
    check_launchable(by["us-east-1", CONSUMER]["image"], "us-east-1", account=CONSUMER)
    with pytest.raises(NotAuthorizedForImages):
        check_launchable(own_east, "us-east-1", account=OUTSIDER)
    with pytest.raises(InvalidAMIIDNotFound):
        describe_image(own_east, "us-east-1", account=OUTSIDER)
    assert own_east not in {i["ImageId"] for i in describe_images(region="us-east-1", account=OUTSIDER)["Images"]}
    assert not describe_image(by["eu-west-1", "123456789012"]["image"], "eu-west-1")["Public"]
    # What kiln cannot act on is recorded in the DistributeImage step.
    [step] = [s for s in images.list_steps(image["arn"]) if s["name"] == "DistributeImage"]
    east_step = next(r for r in step["outputs"]["regions"] if r["region"] == "us-east-1")
    assert east_step["kmsKeyId"].startswith("arn:aws:kms:us-east-1")
    assert east_step["licenseConfigurationArns"] and east_step["fastLaunchConfigurations"] == [{"enabled": False}]
    # Copies for other accounts within a region share the region's blobs: nothing moves for them.
    for region_step in step["outputs"]["regions"]:
        for copy in region_step.get("accountCopies", []):
            assert copy["blobsLinked"] == copy["blobsCopied"] == 0 and copy["blobsAlreadyPresent"] > 0
    assert len([r for r in step["outputs"]["regions"] if r.get("accountCopies")]) == 2
    # The CLI shows every output, in JSON and as a table.
    shown = kiln("image", "get", image["arn"], "--output", "json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["image"]["outputResources"]["amis"] == amis
    text = kiln("image", "get", image["arn"])
    for ami in amis:
        assert re.search(rf"{ami['region']}\s+{ami['accountId']}\s+{ami['image']}\s+{re.escape(ami['name'])}",
                         text.stdout)


def test_a_real_launch_of_a_distributed_copy_in_another_account(parent_ami: str) -> None:
    from kiln.runtime import instances
    from kiln.runtime.exec import exec_in
    from kiln.services.ec2.instances import run_instance

    make_world()
    arns = make_build_inputs(parent_ami, [{"region": "us-east-1", "amiDistributionConfiguration": {
        "targetAccountIds": [CONSUMER]}}])
    image = build(arns)
    copy = next(a for a in image["outputResources"]["amis"] if a["accountId"] == CONSUMER)
    instance = run_instance(copy["image"], region="us-east-1", account=CONSUMER)
    try:
        assert exec_in(instance.id, ["cat", "/etc/one"], timeout=30).stdout.strip() == "one"
    finally:
        instances.terminate(instance.id, force=True)


def test_a_second_build_copies_only_its_new_blobs(parent_ami: str, kiln_home: Path) -> None:
    from kiln.store.api import image_layers

    make_world()
    distributions = [{"region": "us-east-1"}]
    first = build(make_build_inputs(parent_ami, distributions, build="echo one > /etc/one"))
    second = build(make_build_inputs(parent_ami, distributions, build="echo two > /etc/two", version="1.0.1"))

    def transfer(image: dict) -> dict:
        [step] = [s for s in images.list_steps(image["arn"]) if s["name"] == "DistributeImage"]
        return next(r for r in step["outputs"]["regions"] if r["region"] == "us-east-1")

    parent_layers = len(image_layers(parent_ami))
    assert transfer(first)["blobsLinked"] + transfer(first)["blobsCopied"] == parent_layers + 1
    assert transfer(second)["blobsLinked"] + transfer(second)["blobsCopied"] == 1  # its own layer only
    assert transfer(second)["blobsAlreadyPresent"] == parent_layers
    # Linked, not copied: the region's blob is the very file of the build region (tmpfs links).
    east_ami = next(a["image"] for a in second["outputResources"]["amis"] if a["region"] == "us-east-1")
    top = image_layers(east_ami, "us-east-1")[-1].digest.split(":")[1]
    east_blob = kiln_home / "regions" / "us-east-1" / "blobs" / "sha256" / top
    assert east_blob.samefile(kiln_home / "regions" / "local" / "blobs" / "sha256" / top)


def test_s3_export_writes_a_reproducible_disk(parent_ami: str, kiln_home: Path, tmp_path: Path) -> None:
    from kiln.store.api import export_image

    make_world()
    arns = make_build_inputs(parent_ami, [{"region": "eu-west-1", "s3ExportConfiguration": {
        "roleName": "vmimport", "diskImageFormat": "VMDK", "s3Bucket": "golden-images", "s3Prefix": "web/exports/"}}])
    image = build(arns)
    ami = next(a["image"] for a in image["outputResources"]["amis"] if a["region"] == "eu-west-1")
    written = kiln_home / "s3" / "golden-images" / "web" / "exports" / f"{ami}.vmdk"
    assert written.is_file()
    assert written.read_bytes()[:4] == b"KDMV"  # a VMDK sparse extent's magic
    again = export_image(ami, "vmdk", tmp_path / "again.vmdk", "eu-west-1")
    assert again.read_bytes() == written.read_bytes()
    [step] = [s for s in images.list_steps(image["arn"]) if s["name"] == "ExportImage"]
    assert step["status"] == "COMPLETED" and step["outputs"]["exports"][0]["path"] == str(written)


def test_a_build_in_another_region_distributes_back_and_prints_its_outputs(kiln, parent_ami: str) -> None:
    from kiln.store.api import copy_image

    make_world()
    east_parent = copy_image(parent_ami, source_region="local", region="us-east-1", name="busybox-east")
    arns = make_build_inputs(east_parent, [
        {"region": "us-east-1", "amiDistributionConfiguration": {"targetAccountIds": [CONSUMER]}},
        {"region": "local"},
    ])
    result = kiln("image", "create", "--recipe", arns["recipe"], "--infrastructure", arns["infrastructure"],
                  "--distribution", arns["distribution"], "--no-tests", "--region", "us-east-1")
    assert result.exit_code == 0, result.stderr
    arn, header, *rows = result.stdout.strip().splitlines()
    assert arn.startswith("arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/")
    assert header.split() == ["REGION", "ACCOUNT", "AMI", "NAME", "DESCRIPTION"]
    assert [tuple(row.split()[:2]) for row in rows] == [
        ("us-east-1", "123456789012"), ("us-east-1", CONSUMER), ("local", "123456789012")]
    image = images.get_image(arn)
    assert [row.split()[2] for row in rows] == [a["image"] for a in image["outputResources"]["amis"]]


def test_lifecycle_sees_only_the_copies_its_policys_account_owns(parent_ami: str) -> None:
    from types import SimpleNamespace

    from kiln.services.lifecycle.candidates import StoreCandidateSource

    make_world()
    image = build(make_build_inputs(parent_ami, [
        {"region": "local", "amiDistributionConfiguration": {"targetAccountIds": [CONSUMER]}},
        {"region": "us-east-1", "amiDistributionConfiguration": {"targetAccountIds": [CONSUMER]}},
    ]))
    policy = SimpleNamespace(arn="arn:aws:imagebuilder:local:123456789012:lifecycle-policy/keep-few")
    [candidate] = StoreCandidateSource().gather(policy)
    assert candidate.arn == image["arn"]
    assert {(ami.region, ami.account) for ami in candidate.amis} == {("local", "123456789012"),
                                                                     ("us-east-1", "123456789012")}
