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
from kiln.model.shapes import format_date, new_client_token, new_request_id, parse_shape
from kiln.services import configurations
from kiln.services.unit import filter_entries, unit_of_work

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
    dated = {"dateCreated": format_date(row.date_created)}
    if row.date_updated is not None:
        dated["dateUpdated"] = format_date(row.date_updated)
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
    token = request.clientToken or new_client_token()
    request = request.model_copy(update={"clientToken": token})
    with unit_of_work(db) as work:
        row, _ = put_infrastructure_configuration(work, request, account=account, region=region)
        return {
            "requestId": new_request_id(),
            "clientToken": token,
            "infrastructureConfigurationArn": row.arn,
        }


def update_infrastructure_configuration(
    body: dict[str, Any] | UpdateInfrastructureConfigurationRequest,
    *,
    db: Session | None = None,
) -> dict[str, Any]:
    request = parse_shape(UpdateInfrastructureConfigurationRequest, body)
    token = request.clientToken or new_client_token()
    with unit_of_work(db) as work:
        row = configurations.update(work, FAMILY, request, MUTABLE_FIELDS)
        return {
            "requestId": new_request_id(),
            "clientToken": token,
            "infrastructureConfigurationArn": row.arn,
        }


def get_infrastructure_configuration(arn: str, *, db: Session | None = None) -> dict[str, Any]:
    with unit_of_work(db) as work:
        row = configurations.find(work, FAMILY, arn)
        return {"requestId": new_request_id(), "infrastructureConfiguration": to_shape(row).dump()}


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
    with unit_of_work(db) as work:
        rows = [row for row in configurations.rows(work, FAMILY, account) if name is None or row.name == name]
        entries = filter_entries([to_summary(row).dump() for row in rows], filters, ("name",))
        return {"requestId": new_request_id(), "infrastructureConfigurationSummaryList": entries}


def delete_infrastructure_configuration(arn: str, *, db: Session | None = None) -> dict[str, Any]:
    with unit_of_work(db) as work:
        row = configurations.delete(work, FAMILY, arn)
        return {"requestId": new_request_id(), "infrastructureConfigurationArn": row.arn}
