"""``resolve:ssm:`` image ids, as EC2 resolves them at launch: ``resolve:ssm:<name>``,
``resolve:ssm:<name>:<version>`` or ``resolve:ssm:<name>:<label>`` (or the parameter's ARN in place of
its name), naming a ``String`` parameter of data type ``aws:ec2:image`` of the launching account in the
launch's region."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiln.ec2_errors import InvalidParameterValue
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.services.parameters.names import IMAGE_DATA_TYPE
from kiln.services.parameters.parameter_store import get_parameter

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

PREFIX = "resolve:ssm:"


def is_reference(image_id: str) -> bool:
    return image_id.startswith(PREFIX)


def resolve_image_parameter(
    reference: str,
    *,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    field: str = "ImageId",
    db: Session | None = None,
) -> str:
    """The AMI id ``reference`` names now. A missing parameter, version or label is SSM's
    ``ParameterNotFound`` / ``ParameterVersionNotFound``; a parameter that is not an image one is
    EC2's ``InvalidParameterValue``."""
    return image_parameter(reference, account=account, region=region, field=field, db=db)["Value"]


def image_parameter(
    reference: str,
    *,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    field: str = "ImageId",
    db: Session | None = None,
) -> dict[str, Any]:
    """The parameter version ``reference`` names now (``Name``, ``Version``, ``Value`` …), checked to be
    an image id one (see :func:`resolve_image_parameter`)."""
    if not is_reference(reference):
        raise InvalidParameterValue(f"{reference!r} does not begin with {PREFIX}", location=field)
    selector = reference[len(PREFIX):]
    parameter = get_parameter(selector, account=account, region=region, db=db)
    if parameter["Type"] != "String" or parameter["DataType"] != IMAGE_DATA_TYPE:
        raise InvalidParameterValue(
            f"{reference}: parameter {parameter['Name']} is a {parameter['Type']} of data type "
            f"{parameter['DataType']}; an image id needs a String of data type {IMAGE_DATA_TYPE}",
            location=field,
            hint=f"kiln parameter put {parameter['Name']} AMI_ID --data-type {IMAGE_DATA_TYPE} --overwrite",
        )
    return parameter
