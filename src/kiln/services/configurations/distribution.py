"""Distribution configurations: where a build's AMIs go and how they are named, tagged and shared."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiln.errors import InvalidInput
from kiln.model.distribution import (
    DEFAULT_TIMEOUT_MINUTES,
    CreateDistributionConfigurationRequest,
    DistributionConfiguration,
    DistributionConfigurationSummary,
    UpdateDistributionConfigurationRequest,
)
from kiln.services.configurations import calls as configurations

if TYPE_CHECKING:
    from kiln.db.tables.resources import DistributionConfigurationRow


def _row_class() -> type[DistributionConfigurationRow]:
    from kiln.db.tables.resources import DistributionConfigurationRow

    return DistributionConfigurationRow


MUTABLE_FIELDS = ("description", "distributions")


def check_regions(distributions: list[dict[str, Any]]) -> None:
    """Every region of the configuration exists: else Image Builder's InvalidParameterValueException
    naming the first that does not."""
    from kiln.services.accounts.regions import RegionNotFound, require_region

    for index, entry in enumerate(distributions):
        try:
            require_region(entry["region"], field=f"distributions[{index}].region")
        except RegionNotFound as error:
            raise InvalidInput(error.message, location=error.location, hint=error.hint) from None


def _normalise(body: dict[str, Any]) -> dict[str, Any]:
    """Create and update refuse a region that does not exist."""
    check_regions(list(body.get("distributions") or []))
    return dict(body)


FAMILY = configurations.Family(
    resource_type="distribution-configuration",
    label="distribution configuration",
    arn_field="distributionConfigurationArn",
    row_class=_row_class,
    normalise=_normalise,
)


def to_shape(row: DistributionConfigurationRow) -> DistributionConfiguration:
    dated = configurations.dates(row)
    return DistributionConfiguration.model_validate(
        {**row.body, "arn": row.arn, "timeoutMinutes": DEFAULT_TIMEOUT_MINUTES, **dated}
    )


def to_summary(row: DistributionConfigurationRow) -> DistributionConfigurationSummary:
    full = to_shape(row).dump()
    fields = DistributionConfigurationSummary.model_fields
    summary = {k: v for k, v in full.items() if k in fields}
    summary["regions"] = [distribution["region"] for distribution in row.body.get("distributions", [])]
    return DistributionConfigurationSummary.model_validate(summary)


CALLS = configurations.Calls(
    FAMILY,
    CreateDistributionConfigurationRequest,
    UpdateDistributionConfigurationRequest,
    MUTABLE_FIELDS,
    to_shape,
    to_summary,
)

put_distribution_configuration = CALLS.put
APPLY_KIND = CALLS.apply_kind("DistributionConfiguration")
create_distribution_configuration = CALLS.create
update_distribution_configuration = CALLS.update
get_distribution_configuration = CALLS.get
find_distribution_configuration = CALLS.find
list_distribution_configurations = CALLS.list_
delete_distribution_configuration = CALLS.delete
