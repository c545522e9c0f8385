"""``kiln image packages|sbom``: what an image has installed, read from its package databases, and its SBOM."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, table

app = typer.Typer()

RESOURCE_HELP = "An AMI id, or an image build version ARN (its AMI in --region)."


@app.command("packages")
def packages(resource: str = typer.Argument(..., help=RESOURCE_HELP), region: Region = DEFAULT_REGION,
             account: Account = "", output: Output = "text") -> None:
    """Packages installed in the image (ListImagePackages); --output json gives the full records (source
    package and version, OSV ecosystem, purl)."""
    from kiln.services.inventory.packages import image_packages

    found = image_packages(resource, region, account)
    if all("name" in record for record in found):
        emit(output, {"imagePackageList": found},
             lambda: table(["PACKAGE", "VERSION", "ARCH", "SOURCE", "SOURCE VERSION"],
                           [(p["name"], p["version"], p["architecture"], p["source_name"], p["source_version"])
                            for p in found]))
        return
    emit(output, {"imagePackageList": found},
         lambda: table(["PACKAGE", "VERSION"], [(p["packageName"], p["packageVersion"]) for p in found]))


@app.command("sbom")
def sbom(
    resource: str = typer.Argument(..., help=RESOURCE_HELP),
    fmt: str = typer.Option("spdx-json", "--format", help="spdx-json (SPDX 2.3) or cyclonedx-json (CycloneDX 1.6)."),
    out: Path = typer.Option(None, "-o", "--out", help="Write the SBOM to this file instead of stdout."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """The image's SBOM, read from its package databases and stored beside it as an OCI referrer artifact
    (the same image always gives the same bytes)."""
    from kiln.services.inventory.sbom import artifact_type, image_sbom

    artifact_type(fmt)  # an unknown format is refused before anything is read
    ami, data = image_sbom(resource, fmt, region, account)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    out.write_bytes(data)
    emit(output, {"ImageId": ami, "Format": fmt, "Path": str(out), "Size": len(data)}, str(out))
