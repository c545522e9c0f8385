"""``kiln region create|list``: regions, each an image store of its own (``kiln.services.accounts.regions``)."""

from __future__ import annotations

import typer

from kiln.cli.options import Output
from kiln.cli.output import emit, table

app = typer.Typer()


@app.command("create")
def create(name: str = typer.Argument(..., help="Region name, e.g. us-east-1."), output: Output = "text") -> None:
    """Create a region; prints its name."""
    from kiln.services.accounts import regions

    result = regions.create_region(name)
    emit(output, {"Region": result}, result["RegionName"])


@app.command("list")
def list_(output: Output = "text") -> None:
    """List the regions and where their image stores live."""
    from kiln.services.accounts import regions

    found = regions.list_regions()
    emit(
        output,
        {"Regions": found},
        lambda: table(
            ["RegionName", "Endpoint", "Created"], [(r["RegionName"], r["Endpoint"], r["CreatedTime"]) for r in found]
        ),
    )
