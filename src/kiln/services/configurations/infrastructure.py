"""Infrastructure configurations: how kiln runs build and test instances (mutable via Update)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiln.model.infrastructure import (
    DEFAULT_INSTANCE_PROFILE,
    MUTABLE_FIELDS,
    CreateInfrastructureConfigurationRequest,
    InfrastructureConfiguration,
    InfrastructureConfigurationSummary,
    UpdateInfrastructureConfigurationRequest,
)
from kiln.services.configurations import calls as configurations

if TYPE_CHECKING:
    from kiln.db.tables.resources import InfrastructureConfigurationRow


def _row_class() -> type[InfrastructureConfigurationRow]:
    from kiln.db.tables.resources import InfrastructureConfigurationRow

    return InfrastructureConfigurationRow


def _normalise(body: dict[str, Any]) -> dict[str, Any]:
    from kiln.services.configurations.vm_builds import check_vm_setting

    check_vm_setting(body)
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


CALLS = configurations.Calls(
    FAMILY,
    CreateInfrastructureConfigurationRequest,
    UpdateInfrastructureConfigurationRequest,
    MUTABLE_FIELDS,
    to_shape,
    to_summary,
)

put_infrastructure_configuration = CALLS.put
APPLY_KIND = CALLS.apply_kind("InfrastructureConfiguration")
create_infrastructure_configuration = CALLS.create
update_infrastructure_configuration = CALLS.update
get_infrastructure_configuration = CALLS.get
find_infrastructure_configuration = CALLS.find
list_infrastructure_configurations = CALLS.list_
delete_infrastructure_configuration = CALLS.delete
