"""``kiln apply -f FILE``: create or update resources from Image Builder request bodies with a ``kind``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, progress

FINAL_BAD = ("FAILED", "CANCELLED")


def apply(
    file: Annotated[str, typer.Option("-f", "--filename", help="YAML or JSON stream; - for stdin.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report, change nothing.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the builds Image documents start; "
                                                      "exit 1 if one FAILED.")] = False,
    endpoint_url: Annotated[str | None, typer.Option(
        "--endpoint-url", help="Apply through a running kiln serve (boto3, the normal AWS credential chain).",
    )] = None,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """Apply every document in FILE, in dependency order, all or nothing, as the account in the
    region; prints each ARN and status. An Image document starts a build (in the background unless
    --wait)."""
    from kiln.errors import InvalidInput, KilnError

    if endpoint_url:
        from kiln.services.apply_remote import apply_remote, wait_remote

        if dry_run:
            raise InvalidInput("--dry-run cannot be combined with --endpoint-url", location="--dry-run",
                               hint="check the file locally with kiln apply --dry-run")
        result = apply_remote(file, endpoint_url=endpoint_url, region=region)
        images = [o.arn for o in result.outcomes if o.kind == "Image"]
        finals = {arn: wait_remote(endpoint_url, region, arn) for arn in images} if wait else {}
    else:
        from kiln.services.accounts.regions import require_region
        from kiln.services.apply import apply_file

        require_region(region)
        result = apply_file(file, dry_run=dry_run, account=account, region=region)
        finals = {} if dry_run else _follow(result.outcomes, wait)
    resources = []
    for outcome in result.outcomes:
        entry = outcome.as_json()
        if outcome.arn in finals:
            entry["imageState"] = finals[outcome.arn]["state"]
        resources.append(entry)
    suffix = " (dry run)" if dry_run else ""
    lines = "\n".join(f"{outcome.arn} {outcome.status}{suffix}" for outcome in result.outcomes)
    emit(output, {"dryRun": dry_run, "resources": resources}, lines)
    failed = [(arn, image["state"]) for arn, image in finals.items() if image["state"]["status"] in FINAL_BAD]
    if failed:
        arn, state = failed[0]
        raise KilnError(f"image {arn} {state['status']}: {state.get('reason', '')}".rstrip(": "),
                        hint=f"kiln image logs {arn}")


def _follow(outcomes: list[Any], wait: bool) -> dict[str, dict[str, Any]]:
    """Start the builds Image documents created (here with --wait, else in a worker of their own); with
    --wait, each image once final (an unchanged one is waited for where it is being built)."""
    from kiln.services import build_queue

    finals = {}
    for outcome in outcomes:
        if outcome.kind != "Image":
            continue
        if outcome.status == "created":
            if wait:
                finals[outcome.arn] = build_queue.build_here(outcome.arn, progress)
            else:
                build_queue.build_detached(outcome.arn)
        elif wait:
            finals[outcome.arn] = build_queue.wait_for(outcome.arn)
    return finals
