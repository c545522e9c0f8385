"""``kiln distribution create|update|list|get|delete``: distribution configurations."""

from __future__ import annotations

import typer

from kiln.cli.resource_input import ResourceVerbs


def register(app: typer.Typer) -> None:
    verbs = ResourceVerbs(app, "kiln.services.distribution", "distributionConfigurationArn")
    verbs.body_command(
        "create", "create_distribution_configuration", "Create an distribution configuration; prints its ARN."
    )
    verbs.body_command(
        "update",
        "update_distribution_configuration",
        "Replace an distribution configuration's settings (body names distributionConfigurationArn).",
    )
    verbs.list_by_name(
        "list_distribution_configurations",
        "distributionConfigurationSummaryList",
        ["ARN", "CREATED", "UPDATED"],
        lambda r: [r["arn"], r["dateCreated"], r.get("dateUpdated")],
        "List distribution configurations.",
    )
    verbs.get("get_distribution_configuration", "distributionConfiguration", "Show an distribution configuration.")
    verbs.delete(
        "delete_distribution_configuration",
        "Delete an distribution configuration (refused while a pipeline uses it).",
    )
