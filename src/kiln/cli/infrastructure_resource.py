"""``kiln infrastructure create|update|list|get|delete``: infrastructure configurations."""

from __future__ import annotations

import typer

from kiln.cli.resource_input import ResourceVerbs


def register(app: typer.Typer) -> None:
    verbs = ResourceVerbs(app, "kiln.services.infrastructure", "infrastructureConfigurationArn")
    verbs.body_command(
        "create", "create_infrastructure_configuration", "Create an infrastructure configuration; prints its ARN."
    )
    verbs.body_command(
        "update",
        "update_infrastructure_configuration",
        "Replace an infrastructure configuration's settings (body names infrastructureConfigurationArn).",
    )
    verbs.list_by_name(
        "list_infrastructure_configurations",
        "infrastructureConfigurationSummaryList",
        ["ARN", "CREATED", "UPDATED"],
        lambda r: [r["arn"], r["dateCreated"], r.get("dateUpdated")],
        "List infrastructure configurations.",
    )
    verbs.get(
        "get_infrastructure_configuration", "infrastructureConfiguration", "Show an infrastructure configuration."
    )
    verbs.delete(
        "delete_infrastructure_configuration",
        "Delete an infrastructure configuration (refused while a pipeline uses it).",
    )
