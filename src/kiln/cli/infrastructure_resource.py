"""``kiln infrastructure create|update|list|get|delete``: infrastructure configurations."""

from __future__ import annotations

import typer

from kiln.cli.resource_input import register_configuration_verbs


def register(app: typer.Typer) -> None:
    register_configuration_verbs(app, "infrastructure")
