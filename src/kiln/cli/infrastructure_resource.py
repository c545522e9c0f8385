"""``kiln infrastructure create|update|list|get|delete``: infrastructure configurations."""

from __future__ import annotations

from types import ModuleType

import typer

from kiln.cli.resource_input import register_configuration_verbs


def register(app: typer.Typer) -> None:
    def service() -> ModuleType:
        from kiln.services.configurations import infrastructure

        return infrastructure

    register_configuration_verbs(app, "infrastructure", service)
