"""``kiln distribution create|update|list|get|delete``: distribution configurations."""

from __future__ import annotations

from types import ModuleType

import typer

from kiln.cli.resource_input import register_configuration_verbs


def register(app: typer.Typer) -> None:
    def service() -> ModuleType:
        from kiln.services.configurations import distribution

        return distribution

    register_configuration_verbs(app, "distribution", service)
