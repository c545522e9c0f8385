"""``kiln infrastructure create|update|list|get|delete``: infrastructure configurations."""

from __future__ import annotations

from types import ModuleType

import typer

from kiln.cli.resource_verbs import configuration_verbs

app = typer.Typer()


def _service() -> ModuleType:
    from kiln.services.configurations import infrastructure

    return infrastructure


configuration_verbs(app, "infrastructure", _service)
