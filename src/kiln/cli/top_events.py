"""``kiln events``: the event log (list, follow) and its webhooks."""

from __future__ import annotations

from typing import Any

import typer

from kiln.cli.options import Output
from kiln.cli.output import emit

app = typer.Typer(help="The event log: image state changes; webhooks that receive them.")
webhooks = typer.Typer(help="Webhooks: HTTP endpoints that receive every event.", no_args_is_help=True)
app.add_typer(webhooks, name="webhook")


def _print_events(output: str, events: list[dict[str, Any]]) -> None:
    import json

    if output.lower() == "json":
        emit(output, events)
        return
    for event in events:
        typer.echo(f"{event['id']}\t{event['time'].isoformat()}\t{event['kind']}\t{event['arn']}\t"
                   f"{json.dumps(event['detail'], default=str)}")


@app.callback(invoke_without_command=True)
def events(
    ctx: typer.Context,
    since: int = typer.Option(0, "--since", help="Only events with an id greater than this."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new events."),
    output: Output = "text",
) -> None:
    """List events (the default), or manage webhooks with `kiln events webhook`."""
    if ctx.invoked_subcommand is not None:
        return
    import json
    import sys
    import time

    from kiln.cli.output import check_format
    from kiln.services.common.events import list_events

    check_format(output)
    found = list_events(since)
    if not follow:
        _print_events(output, found)
        return
    last = since
    try:
        while True:
            for event in found:
                if output.lower() == "json":  # one JSON object per line while following
                    sys.stdout.write(json.dumps(event, default=str) + "\n")
                else:
                    _print_events(output, [event])
                last = event["id"]
            sys.stdout.flush()
            time.sleep(1.0)
            found = list_events(last)
    except KeyboardInterrupt:
        return


@webhooks.command("add")
def webhook_add(
    url: str = typer.Argument(..., help="http:// or https:// URL receiving POSTs."),
    secret: str = typer.Option(None, "--secret", help="Sign bodies with HMAC-SHA256 (X-Kiln-Signature)."),
    output: Output = "text",
) -> None:
    """Add a webhook; prints its id."""
    from kiln.services.common.events import add_webhook

    hook = add_webhook(url, secret)
    emit(output, hook, str(hook["id"]))


@webhooks.command("list")
def webhook_list(output: Output = "text") -> None:
    """List webhooks."""
    from kiln.cli.output import table
    from kiln.services.common.events import list_webhooks

    found = list_webhooks()
    rows = [(h["id"], h["url"], h["signed"], h["enabled"]) for h in found]
    emit(output, found, lambda: table(["ID", "URL", "SIGNED", "ENABLED"], rows))


@webhooks.command("remove")
def webhook_remove(webhook_id: int = typer.Argument(...), output: Output = "text") -> None:
    """Remove a webhook and its pending deliveries."""
    from kiln.services.common.events import remove_webhook

    remove_webhook(webhook_id)
    emit(output, {"id": webhook_id, "removed": True}, f"removed webhook {webhook_id}")
