"""Building blocks shared by every Image Builder shape: strict base model, names, tags, timestamps.

Field names are Image Builder's own (camelCase) so a request body from boto3, the AWS CLI or a
CloudFormation template validates unchanged. Unknown fields are rejected.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from kiln.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)

RESOURCE_NAME_PATTERN = r"^[-_A-Za-z-0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z-0-9]$"
TAG_KEY_PATTERN = r"^(?!aws:)[a-zA-Z0-9\s_.:/=+\-@]*$"


class Shape(BaseModel):
    """A strict Image Builder structure: exact field names, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", regex_engine="python-re", validate_default=False)

    def dump(self) -> dict[str, Any]:
        """The JSON body: camelCase names, unset fields left out."""
        return self.model_dump(mode="json", exclude_none=True)


ResourceName = Annotated[str, StringConstraints(pattern=RESOURCE_NAME_PATTERN)]
NonEmptyString = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
ClientToken = Annotated[str, StringConstraints(min_length=1, max_length=64)]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=TAG_KEY_PATTERN)]
TagValue = Annotated[str, StringConstraints(max_length=256)]
TagMap = Annotated[dict[TagKey, TagValue], Field(min_length=1, max_length=50)]
ResourceTagMap = Annotated[dict[TagKey, TagValue], Field(min_length=1, max_length=30)]
AccountId = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
Platform = Literal["Windows", "Linux", "macOS"]
Ownership = Literal["Self", "Shared", "Amazon", "ThirdParty", "AWSMarketplace"]


class LatestVersionReferences(Shape):
    latestVersionArn: str | None = None
    latestMajorVersionArn: str | None = None
    latestMinorVersionArn: str | None = None
    latestPatchVersionArn: str | None = None


def new_client_token() -> str:
    return secrets.token_hex(16)


def new_request_id() -> str:
    return secrets.token_hex(16)


def format_date(moment: datetime) -> str:
    """Image Builder's ``dateCreated`` form: ISO 8601 UTC with milliseconds, e.g. 2019-12-03T18:19:55.177Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _location(error: dict[str, Any]) -> str:
    parts: list[str] = []
    for item in error.get("loc", ()):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("function-after", "function-before", "function-wrap") or "[" in str(item):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def validation_message(error: ValidationError) -> tuple[str, str]:
    """(field, message) of the first problem pydantic found, in Image Builder field names."""
    first = error.errors(include_url=False)[0]
    field = _location(first)
    if first["type"] == "extra_forbidden":
        return field, f"unknown field {field.rsplit('.', 1)[-1]!r}"
    if first["type"] == "missing":
        return field, f"required field {field.rsplit('.', 1)[-1]!r} is missing"
    if (
        first["type"] == "string_pattern_mismatch"
        and (first.get("ctx") or {}).get("pattern") == RESOURCE_NAME_PATTERN
    ):
        return field, (
            f"{first['input']!r} is not a valid name: use 3 to 128 letters, digits, '-' or '_' "
            "(spaces allowed inside)"
        )
    return field, str(first["msg"]).removeprefix("Value error, ")


def parse_shape(model: type[M], body: Any, *, where: str | None = None) -> M:
    """Validate a request body against ``model``; errors become one InvalidInput naming the field."""
    if isinstance(body, model):
        return body
    if not isinstance(body, dict):
        raise InvalidInput(
            f"expected an object with {model.__name__} fields, got {type(body).__name__}", location=where
        )
    try:
        return model.model_validate(body)
    except ValidationError as error:
        field, message = validation_message(error)
        location = f"{where}: {field}" if where and field else (where or field or None)
        count = error.error_count()
        hint = f"{count - 1} more problem(s) in the same body" if count > 1 else None
        raise InvalidInput(message, location=location, hint=hint) from None


def check_version(value: str, *, wildcards: bool) -> str:
    """Pydantic-side version check: kiln's InvalidInput turned into the ValueError pydantic reports."""
    from kiln.model.versions import parse_filter, parse_version

    try:
        (parse_filter if wildcards else parse_version)(value)
    except InvalidInput as error:
        raise ValueError(f"{error.message} ({error.hint})" if error.hint else error.message) from None
    return value


# The semanticVersion of a Create request: the API's pattern admits x, but a stored version is concrete.
ConcreteVersion = Annotated[str, AfterValidator(lambda value: check_version(value, wildcards=False))]


def check_arn(value: str, resource_type: str, *, allow_short: bool = True) -> str:
    """Pydantic-side ARN syntax check."""
    from kiln.model.arn import parse_arn

    try:
        parse_arn(value, resource_type=resource_type, allow_short=allow_short)
    except InvalidInput as error:
        raise ValueError(f"{error.message} ({error.hint})" if error.hint else error.message) from None
    return value
