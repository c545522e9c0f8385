"""Infrastructure configurations: how kiln runs build and test instances (mutable via Update)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.infrastructure import (
    DEFAULT_INSTANCE_PROFILE,
    MUTABLE_FIELDS,
    CreateInfrastructureConfigurationRequest,
    InfrastructureConfiguration,
    InfrastructureConfigurationSummary,
    UpdateInfrastructureConfigurationRequest,
)
from kiln.model.shapes import parse_shape
from kiln.services import configurations

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kiln.db.tables.resources import InfrastructureConfigurationRow


def _row_class() -> type[InfrastructureConfigurationRow]:
    from kiln.db.tables.resources import InfrastructureConfigurationRow

    return InfrastructureConfigurationRow


def _normalise(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "instanceProfileName": body.get("instanceProfileName") or DEFAULT_INSTANCE_PROFILE}


FAMILY = configurations.Family(
    resource_type="infrastructure-configuration",
    label="infrastructure configuration",
    arn_field="infrastructureConfigurationArn",
    row_class=_row_class,
    normalise=_normalise,
)


def to_shape(row: InfrastructureConfigurationRow) -> InfrastructureConfiguration:
    dated = configurations.dates(row)
    return InfrastructureConfiguration.model_validate({**row.body, "arn": row.arn, **dated})


def to_summary(row: InfrastructureConfigurationRow) -> InfrastructureConfigurationSummary:
    full = to_shape(row).dump()
    fields = InfrastructureConfigurationSummary.model_fields
    return InfrastructureConfigurationSummary.model_validate({k: v for k, v in full.items() if k in fields})


def put_infrastructure_configuration(
    db: Session,
    request: CreateInfrastructureConfigurationRequest,
    *,
    on_exists: str = "error",
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    where: str | None = None,
) -> tuple[InfrastructureConfigurationRow, str]:
    return configurations.put(
        db, FAMILY, request, on_exists=on_exists, account=account, region=region, where=where
    )


def create_infrastructure_configuration(
    body: dict[str, Any] | CreateInfrastructureConfigurationRequest,
    *,
    db: Session | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    request = parse_shape(CreateInfrastructureConfigurationRequest, body)
    return configurations.create_call(FAMILY, request, db=db, account=account, region=region)


def update_infrastructure_configuration(
    body: dict[str, Any] | UpdateInfrastructureConfigurationRequest,
    *,
    db: Session | None = None,
) -> dict[str, Any]:
    request = parse_shape(UpdateInfrastructureConfigurationRequest, body)
    return configurations.update_call(FAMILY, request, MUTABLE_FIELDS, db=db)


def get_infrastructure_configuration(arn: str, *, db: Session | None = None) -> dict[str, Any]:
    return configurations.get_call(FAMILY, arn, to_shape, db=db)


def find_infrastructure_configuration(db: Session, arn: str) -> InfrastructureConfigurationRow:
    return configurations.find(db, FAMILY, arn)


def list_infrastructure_configurations(
    *,
    name: str | None = None,
    filters: list[dict[str, Any]] | None = None,
    db: Session | None = None,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """The List call; ``filters`` on name."""
    return configurations.list_call(FAMILY, to_summary, name=name, filters=filters, db=db, account=account)


def delete_infrastructure_configuration(arn: str, *, db: Session | None = None) -> dict[str, Any]:
    return configurations.delete_call(FAMILY, arn, db=db)
