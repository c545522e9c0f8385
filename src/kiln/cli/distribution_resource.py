"""``kiln distribution create|update|list|get|delete``: distribution configurations."""

from __future__ import annotations

from types import ModuleType

import typer

from kiln.cli.resource_verbs import configuration_verbs

app = typer.Typer()


def _service() -> ModuleType:
    from kiln.services.configurations import distribution

    return distribution


configuration_verbs(app, "distribution", _service)
