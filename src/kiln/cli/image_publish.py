"""``kiln image publish AMI --to aws --region R``: the image as a real AMI (``kiln.services.publishing``)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output
from kiln.cli.output import emit, human_bytes, progress

app = typer.Typer()


@contextmanager
def _bar(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A Rich bar on stderr (bytes, rate), only when stderr is a terminal."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    with Progress(TextColumn("publishing"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("publish", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _text(result: dict[str, Any]) -> str:
    if result["AlreadyPublished"]:
        return f"{result['AmiId']}  (already published: {result['SnapshotId']})"
    parent = f", parent {result['ParentSnapshotId']}" if result["ParentSnapshotId"] else ""
    return (
        f"{result['AmiId']}  snapshot {result['SnapshotId']}{parent}: {result['BlocksSent']} blocks sent "
        f"({human_bytes(result['BytesSent'])}), {result['BlocksSkipped']} skipped of {result['BlocksTotal']}"
    )


@app.command("publish")
def publish(
    ami_id: str = typer.Argument(..., help="The kiln AMI to publish."),
    to: str = typer.Option("aws", "--to", help="Where to: aws."),
    region: str = typer.Option(None, "--region", help="AWS region (default: the AWS chain's, e.g. AWS_REGION)."),
    profile: str = typer.Option(None, "--profile", help="AWS profile (default: the normal AWS chain)."),
    endpoint_url: str = typer.Option(None, "--endpoint-url", help="Another endpoint for every AWS service."),
    source_region: str = typer.Option(DEFAULT_REGION, "--source-region", help="kiln region holding the AMI."),
    workers: int = typer.Option(8, "--workers", help="Blocks uploaded in parallel (1-64)."),
    share: list[str] = typer.Option(
        [], "--share", help="Launch permission KIND=VALUE: UserId, Group (all), OrganizationArn, OrganizationalUnitArn."
    ),
    account: Account = "",
    output: Output = "text",
) -> None:
    """Publish an AMI to AWS: its disk into an EBS snapshot (EBS direct APIs), then RegisterImage."""
    from kiln.cli.resource_input import launch_permissions
    from kiln.services.publishing import aws

    permissions = launch_permissions(share, "--share")

    with _bar(sys.stderr.isatty()) as bar:
        result = aws.publish_image(
            ami_id, to=to, region=region, profile=profile, endpoint_url=endpoint_url, source_region=source_region,
            account=account, workers=workers, launch_permissions=permissions, progress=bar, note=progress,
        )  # fmt: skip
    emit(output, result, _text(result))
