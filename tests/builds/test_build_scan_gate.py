"""A build's scan step (``imageScanningConfiguration``) after the test phase: scanning without a condition
keeps the findings and ScanResults of the output AMI; ``scanResultCondition`` exceeded fails the image
(FAILED, its AMI discarded, nothing registered) with the findings in the build log and kept for the build."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Kiln
from tests.scanning.scan_images import ADVISORIES, debian_root, import_advisories

from kiln.errors import InvalidInput
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.services import build_queue
from kiln.services.builds import records as images
from kiln.store import api as store

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")
SCAN = {"imageScanningEnabled": True, "ecrConfiguration": {"repositoryName": "ignored"}}
GATE = {**SCAN, "imageScanningTypes": ["ON_DEMAND_AMI_CVE"], "scanResultCondition": {"maximumSeverityLabel": "HIGH"}}


@pytest.fixture
def parent_ami(busybox_copy: Any, tmp_path: Path) -> str:
    root = debian_root(busybox_copy("debianish"))
    bash = root / "bin" / "bash"
    bash.write_text('#!/bin/busybox sh\nexec /bin/busybox sh "$@"\n')
    bash.chmod(0o755)
    import_advisories(tmp_path / "osv", ADVISORIES)
    return store.import_rootfs(root, name="debianish-parent")


def _build(arns: dict[str, str], scanning: dict[str, Any]) -> dict[str, Any]:
    started = build_queue.create_image({
        "imageRecipeArn": arns["recipe"], "infrastructureConfigurationArn": arns["infrastructure"],
        "distributionConfigurationArn": arns["distribution"], "imageScanningConfiguration": scanning,
    }, account=DEFAULT_ACCOUNT, region=DEFAULT_REGION)
    arn = started["imageBuildVersionArn"]
    assert images.get_image(arn)["scanState"] == {"status": "PENDING"}
    return build_queue.build_here(arn, progress=lambda line: None)


def test_scanning_keeps_the_output_amis_findings(make_recipe: Any, kiln: Kiln) -> None:
    image = _build(make_recipe("true", test="true"), SCAN)
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    assert image["scanState"] == {"status": "COMPLETED"}
    ami = image["outputResources"]["amis"][0]["image"]
    steps = [(s["workflow"], s["name"], s["status"]) for s in images.list_steps(image["arn"])]
    assert ("test", "ScanImage", "COMPLETED") in steps
    findings = json.loads(kiln("image", "findings", image["arn"], "--output", "json").stdout)["Findings"]
    assert {f["vulnerabilityId"] for f in findings} == {"DSA-5000-1", "DEBIAN-CVE-2026-0001"}
    built = [i for i in store.describe_images(filters={"tag:Ec2ImageBuilderArn": [image["arn"]]})
             if i.scan_results is not None]
    assert built and built[0].scan_results.highest_severity == "critical"
    assert ami in {i.id for i in built}


def test_a_build_exceeding_the_scan_gate_fails_and_registers_nothing(make_recipe: Any, kiln: Kiln) -> None:
    image = _build(make_recipe("true", test="true"), GATE)
    assert image["state"]["status"] == "FAILED"
    assert "exceed scanResultCondition maximumSeverityLabel HIGH" in image["state"]["reason"]
    assert "DSA-5000-1" in image["state"]["reason"]
    assert image["outputResources"]["amis"] == []
    assert store.describe_images(filters={"tag:Ec2ImageBuilderArn": [image["arn"]]}) == []
    [step] = [s for s in images.list_steps(image["arn"]) if s["name"] == "ScanImage"]
    assert step["status"] == "FAILED"
    log = Path(images.get_row(image["arn"]).log_directory) / "scan"
    assert "scanResultCondition exceeded by: DSA-5000-1 (CRITICAL, libssl3)" in log.read_text()
    kept = json.loads(kiln("image", "findings", image["arn"], "--output", "json").stdout)
    assert kept["ImageId"] is None and "DSA-5000-1" in {f["vulnerabilityId"] for f in kept["Findings"]}


def test_bad_scanning_configurations_are_refused(make_recipe: Any) -> None:
    arns = make_recipe("true", test="true")
    body = {"imageRecipeArn": arns["recipe"], "infrastructureConfigurationArn": arns["infrastructure"]}
    before = len(images.list_images())
    cases = [
        ({**SCAN, "scanResultCondition": {"maximumSeverityLabel": "HIGH"}}, "scanResultCondition"),
        ({**GATE, "scanResultCondition": {"maximumSeverityLabel": "CRITICAL"}}, "maximumSeverityLabel"),
        ({**SCAN, "imageScanningTypes": ["EVERYTHING"]}, "imageScanningTypes"),
    ]
    for scanning, where in cases:
        with pytest.raises(InvalidInput) as refused:
            build_queue.create_image({**body, "imageScanningConfiguration": scanning},
                                     account=DEFAULT_ACCOUNT, region=DEFAULT_REGION)
        assert where in (refused.value.location or ""), refused.value
    with pytest.raises(InvalidInput) as refused:
        build_queue.create_image({**body, "imageTestsConfiguration": {"imageTestsEnabled": False},
                                  "imageScanningConfiguration": SCAN}, account=DEFAULT_ACCOUNT, region=DEFAULT_REGION)
    assert "image tests" in refused.value.message
    assert len(images.list_images()) == before
