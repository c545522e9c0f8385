"""Watermarks and ancestry on the EC2 wire: AttachImageWatermark / DetachImageWatermark / GetImageAncestry
through boto3 against ``kiln serve``, DescribeImages' ``ImageWatermarks`` and its filter, owner-only
attach with EC2's codes, DryRun answered as EC2 does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server


@pytest.fixture
def ami(kiln_home: Path, busybox_dir: Path) -> str:
    from kiln.store import api

    return api.import_rootfs(busybox_dir, name="busybox-base")


def _code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def test_watermarks_and_ancestry_over_the_wire(server: Server, ami: str) -> None:
    from kiln.services.accounts.accounts import create_access_key, create_account

    ec2 = server.client("ec2")
    assert _code(ec2.attach_image_watermark, ImageId=ami, WatermarkName="approved", DryRun=True) == "DryRunOperation"
    assert ec2.attach_image_watermark(ImageId=ami, WatermarkName="approved")["WatermarkKey"] == "123456789012:approved"
    [image] = ec2.describe_images(ImageIds=[ami])["Images"]
    [mark] = image["ImageWatermarks"]
    assert (mark["WatermarkKey"], mark["SourceImageId"], mark["SourceImageRegion"]) == (
        "123456789012:approved", ami, "local")
    assert mark["WatermarkCreationTime"].tzinfo is not None  # botocore parsed a timestamp
    filtered = ec2.describe_images(Filters=[{"Name": "image-watermark.watermark-key", "Values": ["*:approved"]}])
    assert [i["ImageId"] for i in filtered["Images"]] == [ami]

    copy = ec2.copy_image(SourceImageId=ami, SourceRegion="local", Name="busybox-copy")["ImageId"]
    [copied] = ec2.describe_images(ImageIds=[copy])["Images"]
    assert [m["WatermarkKey"] for m in copied["ImageWatermarks"]] == ["123456789012:approved"]
    entries = ec2.get_image_ancestry(ImageId=copy)["ImageAncestryEntries"]
    assert [(e["ImageId"], e.get("SourceImageId")) for e in entries] == [(copy, ami), (ami, None)]
    assert _code(ec2.get_image_ancestry, ImageId="ami-0123456789abcdef0") == "InvalidAMIID.NotFound"

    other = server.client("ec2", key=create_access_key(create_account("account-b")["Id"]))
    assert _code(other.attach_image_watermark, ImageId=ami, WatermarkName="mine") == "InvalidAMIID.NotFound"
    assert _code(ec2.attach_image_watermark, ImageId=ami, WatermarkName="semi;colon") == "InvalidParameterValue"
    assert ec2.detach_image_watermark(ImageId=ami, WatermarkKey="123456789012:approved")["Return"] is True
    assert "ImageWatermarks" not in ec2.describe_images(ImageIds=[ami])["Images"][0]
