"""Distribution configurations: where a build's AMIs go and how they are named, tagged and shared."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.distribution import (
    DEFAULT_TIMEOUT_MINUTES,
    CreateDistributionConfigurationRequest,
    DistributionConfiguration,
    DistributionConfigurationSummary,
    UpdateDistributionConfigurationRequest,
)
from kiln.model.shapes import parse_shape
from kiln.services import configurations

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kiln.db.tables.resources import DistributionConfigurationRow


def _row_class() -> type[DistributionConfigurationRow]:
    from kiln.db.tables.resources import DistributionConfigurationRow

    return DistributionConfigurationRow


MUTABLE_FIELDS = ("description", "distributions")


def _normalise(body: dict[str, Any]) -> dict[str, Any]:
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


def put_distribution_configuration(
    db: Session,
    request: CreateDistributionConfigurationRequest,
    *,
    on_exists: str = "error",
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    where: str | None = None,
) -> tuple[DistributionConfigurationRow, str]:
    return configurations.put(
        db, FAMILY, request, on_exists=on_exists, account=account, region=region, where=where
    )


def create_distribution_configuration(
    body: dict[str, Any] | CreateDistributionConfigurationRequest,
    *,
    db: Session | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    request = parse_shape(CreateDistributionConfigurationRequest, body)
    return configurations.create_call(FAMILY, request, db=db, account=account, region=region)


def update_distribution_configuration(
    body: dict[str, Any] | UpdateDistributionConfigurationRequest,
    *,
    db: Session | None = None,
) -> dict[str, Any]:
    request = parse_shape(UpdateDistributionConfigurationRequest, body)
    return configurations.update_call(FAMILY, request, MUTABLE_FIELDS, db=db)


def get_distribution_configuration(arn: str, *, db: Session | None = None) -> dict[str, Any]:
    return configurations.get_call(FAMILY, arn, to_shape, db=db)


def find_distribution_configuration(db: Session, arn: str) -> DistributionConfigurationRow:
    return configurations.find(db, FAMILY, arn)


def list_distribution_configurations(
    *,
    name: str | None = None,
    filters: list[dict[str, Any]] | None = None,
    db: Session | None = None,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """The List call; ``filters`` on name."""
    return configurations.list_call(FAMILY, to_summary, name=name, filters=filters, db=db, account=account)


def delete_distribution_configuration(arn: str, *, db: Session | None = None) -> dict[str, Any]:
    return configurations.delete_call(FAMILY, arn, db=db)
