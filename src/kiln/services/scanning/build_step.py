"""The scan step of an image build: ``imageScanningConfiguration`` (CreateImage, a pipeline) runs it after
the test phase, as the build engine's ``ScanImage`` action (registered here, so the builds family needs
no import of this one).

- ``imageScanningEnabled`` needs image tests enabled (as on Image Builder); ``ecrConfiguration`` is
  accepted and ignored (kiln scans AMIs); ``imageScanningTypes`` is one of TEST_INSTANCE_CVE (default)
  and ON_DEMAND_AMI_CVE — kiln scans the new AMI's package databases either way.
- ``scanResultCondition{maximumSeverityLabel, fixAvailable}`` (Image Builder's own field; allowed only
  with ON_DEMAND_AMI_CVE) is the gate: a counted finding above the label fails the step, and so the
  image (FAILED, its AMI discarded, nothing distributed). By default only findings with a fix count
  (``fixAvailable: false`` counts every finding); a counted CRITICAL always fails. Findings whose
  severity is UNTRIAGED are never above a label. A scan that cannot run (no package database) is
  scanState FAILED: it fails the image only when a scanResultCondition asks for proof. The findings are
  written to the build log (``kiln image logs``) and kept as the image build's scan (``kiln image findings IMAGE_ARN``,
  ListImageScanFindings), also when the gate failed and the AMI is gone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kiln.errors import InvalidInput
from kiln.model.pipeline import ImageScanningConfiguration
from kiln.model.shapes import parse_shape
from kiln.services.builds.actions import StepCall, StepFailed, register_action
from kiln.services.scanning.image_scans import scan_ami
from kiln.services.scanning.severity import LABELS
from kiln.store import api as store
from kiln.store import scans as stored

ACTION = "ScanImage"
ON_DEMAND = "ON_DEMAND_AMI_CVE"


def scanning_config(config: Any, *, tests_enabled: bool, where: str = "imageScanningConfiguration"
                    ) -> dict[str, Any] | None:
    """The checked configuration when scanning is enabled, else None."""
    if config is None:
        return None
    checked = parse_shape(ImageScanningConfiguration, config, where=where).dump()
    if not checked.get("imageScanningEnabled"):
        return None
    if not tests_enabled:
        raise InvalidInput("image scanning needs image tests enabled (imageTestsConfiguration.imageTestsEnabled)",
                           location=f"{where}.imageScanningEnabled")
    types = checked.get("imageScanningTypes") or ["TEST_INSTANCE_CVE"]
    if checked.get("scanResultCondition") and types != [ON_DEMAND]:
        raise InvalidInput(f"scanResultCondition is allowed only with imageScanningTypes [{ON_DEMAND}]",
                           location=f"{where}.scanResultCondition")
    return checked


def request_scan(image_arn: str, config: dict[str, Any] | None, *, account: str, region: str,
                 pipeline_arn: str | None = None) -> None:
    if config:
        stored.request_scan(image_arn, account=account, region=region, pipeline_arn=pipeline_arn, config=config)


def gate_failures(findings: list[dict[str, Any]], condition: dict[str, Any]) -> list[dict[str, Any]]:
    """The findings that fail ``scanResultCondition``."""
    limit = LABELS.index(condition["maximumSeverityLabel"])
    counted = [f for f in findings if f["fixAvailable"] == "YES" or condition.get("fixAvailable") is False]
    return [f for f in counted if f["severity"] != "UNTRIAGED" and LABELS.index(f["severity"]) < limit]


def _log(path: Path, findings: list[dict[str, Any]], summary: dict[str, Any], failing: list[dict[str, Any]]) -> None:
    lines = [f"{f['severity']:<13} {f['vulnerabilityId']:<24} {f['package']['name']} {f['installedVersion']} "
             f"fixed in {f['fixedVersion'] or 'no fix yet'}" for f in findings]
    lines.append(f"summary: {json.dumps(summary, sort_keys=True)}")
    if failing:
        lines.append("scanResultCondition exceeded by: " + ", ".join(
            f"{f['vulnerabilityId']} ({f['severity']}, {f['package']['name']})" for f in failing))
    path.write_text("\n".join(lines) + "\n")


def scan_step(build: Any, call: StepCall) -> dict[str, Any]:
    """The ``ScanImage`` action: scan the build's new AMI and apply the gate."""
    config = call.inputs.get("imageScanningConfiguration") or {}
    if not build.new_ami:
        raise StepFailed(f"step {call.step.name}: the build made no AMI to scan")
    ami = store.get_image(build.new_ami, build.region)
    condition = config.get("scanResultCondition")
    log = Path(build.log_dir) / "scan"
    try:
        done = scan_ami(ami, image_arn=build.arn).scan
    except InvalidInput as error:  # e.g. no package database: the scan FAILED, never "clean"
        log.write_text(f"scan failed: {error}\n")
        call.record.log_path = str(log)
        if condition:
            raise StepFailed(f"step {call.step.name}: the scan failed, so scanResultCondition cannot be met: "
                             f"{error}") from None
        build.progress(f"    scan failed (scanState FAILED; no scanResultCondition to enforce): {error}")
        return {"scanStatus": "FAILED", "reason": str(error)}
    failing = gate_failures(done.findings, condition) if condition else []
    _log(log, done.findings, done.summary, failing)
    call.record.log_path = str(log)
    for line in log.read_text().splitlines():
        build.progress(f"    {line}")
    outputs = {"findingCount": len(done.findings), "highestSeverity": done.summary.get("highestSeverity")}
    if failing:
        stored.forget_image(build.new_ami)  # the AMI is discarded with the failed build; its findings stay
        worst = min(failing, key=lambda f: LABELS.index(f["severity"]))
        raise StepFailed(
            f"step {call.step.name}: {len(failing)} finding(s) exceed scanResultCondition maximumSeverityLabel "
            f"{condition['maximumSeverityLabel']}, worst {worst['vulnerabilityId']} ({worst['severity']}, "
            f"{worst['package']['name']}); kiln image findings {build.arn}")
    return outputs


register_action(ACTION, scan_step)
