"""``kiln image scan|findings|patch-status``: an image's vulnerability scan (kept as its latest), its
findings, and the security updates pending for its packages."""

from __future__ import annotations

import sys

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, table

app = typer.Typer()

RESOURCE_HELP = "An AMI id, or an image build version ARN (its AMI in --region)."


def _summary_line(summary: dict) -> str:
    counts = ", ".join(f"{label.lower()} {n}" for label, n in summary.get("counts", {}).items() if n)
    line = (f"{summary.get('total', 0)} findings ({counts or 'none'}); highest "
            f"{summary.get('highestSeverity') or '-'}, highest fixable {summary.get('highestFixableSeverity') or '-'}")
    if summary.get("unknownEcosystems"):
        line += f"\nUNKNOWN: no advisory data for {', '.join(summary['unknownEcosystems'])} (not a clean bill)"
    return line + "\n"


def _findings_table(findings: list[dict]) -> None:
    table(["VULNERABILITY", "PACKAGE", "INSTALLED", "FIXED", "SEVERITY", "FIX SINCE"],
          [(f["vulnerabilityId"], f["package"]["name"], f["installedVersion"],
            f["fixedVersion"] or f["fixState"].lower().replace("_", " "), f["severity"],
            (f["fixAvailableSince"] or "-")[:10]) for f in findings])


@app.command("scan")
def scan(resource: str = typer.Argument(..., help=RESOURCE_HELP), region: Region = DEFAULT_REGION,
         account: Account = "", output: Output = "text") -> None:
    """Scan the image's installed packages against the imported advisory data now (new advisory data
    changes the findings of old images) and keep it as the image's latest scan (DescribeImages'
    ScanResults, allowed-images ScanResultCondition)."""
    from kiln.services.scanning.image_scans import scan_image

    done = scan_image(resource, region, account).scan

    def text() -> None:
        sys.stdout.write(f"{done.image_id}: scanned {done.scanned_at:%Y-%m-%d %H:%M:%S} UTC\n")
        sys.stdout.write(_summary_line(done.summary))

    emit(output, {"ImageId": done.image_id, "ImageBuildVersionArn": done.image_arn, "ScanState": done.status,
                  "Reason": done.reason, "ScannedAt": done.scanned_at.isoformat() if done.scanned_at else None,
                  "Summary": done.summary, "ScanResults": done.results.to_ec2() if done.results else None}, text)


@app.command("findings")
def findings(
    resource: str = typer.Argument(..., help=RESOURCE_HELP),
    severity: str = typer.Option(None, "--severity", help="Only this severity (CRITICAL, HIGH, MEDIUM, …)."),
    fix_available: bool = typer.Option(False, "--fix-available", help="Only findings with a fix available."),
    region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text",
) -> None:
    """The findings of the image's latest scan (`kiln image scan` first)."""
    from kiln.services.scanning.image_scans import image_findings

    done, shown = image_findings(resource, region, account, severity=severity, fix_available=fix_available)

    def text() -> None:
        _findings_table(shown)
        sys.stdout.write(f"\nscanned {done.scanned_at:%Y-%m-%d %H:%M:%S} UTC; " + _summary_line(done.summary))

    emit(output, {"ImageId": done.image_id, "ImageBuildVersionArn": done.image_arn,
                  "ScannedAt": done.scanned_at.isoformat() if done.scanned_at else None, "Findings": shown,
                  "Summary": done.summary}, text)


@app.command("patch-status")
def patch_status(resource: str = typer.Argument(..., help=RESOURCE_HELP), region: Region = DEFAULT_REGION,
                 account: Account = "", output: Output = "text") -> None:
    """Security updates pending for the image's packages: each Debian/Ubuntu package with a newer version
    in its release's security suite, and since when kiln has seen it (no advisory data needed)."""
    from kiln.services.scanning.image_scans import image_patch_status

    report = image_patch_status(resource, region, account)

    def text() -> None:
        table(["PACKAGE", "ARCH", "INSTALLED", "AVAILABLE", "SUITE", "SEEN SINCE"],
              [(u.package.name, u.package.architecture, u.installed_version, u.available_version, u.suite,
                f"{u.first_seen:%Y-%m-%d %H:%M}") for u in report.updates])
        sys.stdout.write(f"\n{len(report.updates)} pending security updates\n")
        if report.unknown:
            sys.stdout.write(f"UNKNOWN: {len(report.unknown)} packages have no security suite kiln can check\n")

    emit(output, report.as_json(), text)
