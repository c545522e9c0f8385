"""``kiln apply -f FILE``: create or update resources from Image Builder request bodies with a ``kind``."""

from __future__ import annotations

from typing import Annotated

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit


def apply(
    file: Annotated[str, typer.Option("-f", "--filename", help="YAML or JSON stream; - for stdin.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report, change nothing.")] = False,
    account: Account = "",
    region: Region = DEFAULT_REGION,
    output: Output = "text",
) -> None:
    """Apply every document in FILE, in dependency order, all or nothing, as the account in the
    region; prints each ARN and status."""
    from kiln.services.accounts.regions import require_region
    from kiln.services.apply import apply_file

    require_region(region)
    result = apply_file(file, dry_run=dry_run, account=account, region=region)
    data = {"dryRun": dry_run, "resources": [outcome.as_json() for outcome in result.outcomes]}
    suffix = " (dry run)" if dry_run else ""
    lines = "\n".join(f"{outcome.arn} {outcome.status}{suffix}" for outcome in result.outcomes)
    emit(output, data, lines)
