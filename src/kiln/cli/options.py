"""The options every command shares, defined once: ``--region``, ``--output``, request bodies.

Use them as parameter annotations, e.g. ``def list_(region: Region = DEFAULT_REGION, output: Output =
"text")``. (The flags' help texts live here, so every command says the same.)
"""

from __future__ import annotations

from typing import Annotated

import typer

from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION

__all__ = ["DEFAULT_ACCOUNT", "DEFAULT_REGION", "CliInputJson", "CliInputYaml", "Output", "Region"]

Region = Annotated[str, typer.Option("--region", help="Region (image store) to use.")]
Output = Annotated[
    str,
    typer.Option("--output", help="Output format: text or json.", case_sensitive=False),
]
CliInputJson = Annotated[
    str | None,
    typer.Option("--cli-input-json", help="Request body: JSON text, file://PATH, a path or - for stdin."),
]
CliInputYaml = Annotated[
    str | None,
    typer.Option("--cli-input-yaml", help="Request body as YAML: file://PATH, a path or - for stdin."),
]
