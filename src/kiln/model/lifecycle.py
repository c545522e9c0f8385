"""Lifecycle policy shapes, exactly as Image Builder's API names them (botocore ``imagebuilder``).

Field names are camelCase as on the wire; unknown fields are rejected. Limits and enums come
from the botocore model; cross-field rules come from the model's documentation and the Image
Builder user guide:

* at most 3 details, at most one detail per action type;
* ``COUNT`` filters only with ``DELETE``, and take neither ``unit`` nor ``retainAtLeast``;
  ``AGE`` filters require ``unit``;
* ``includeResources.snapshots`` needs ``amis`` and a ``DELETE`` action; ``DEPRECATE``/``DISABLE``
  may include AMIs only; ``containers`` only with ``DELETE`` on ``CONTAINER_IMAGE`` policies;
* ``CONTAINER_IMAGE`` policies allow only ``DELETE`` and no AMI exclusion rules;
* ``resourceSelection`` holds exactly one of ``recipes`` or ``tagMap``; a wildcard version has
  every node right of the first ``x`` also ``x`` (``1.x.x`` yes, ``x.2.x`` no).

``parse`` turns pydantic's errors into one :class:`kiln.errors.InvalidInput` naming the field.
"""

from __future__ import annotations

import itertools
import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from kiln.errors import InvalidInput
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION


class ActionType(StrEnum):
    DELETE = "DELETE"
    DEPRECATE = "DEPRECATE"
    DISABLE = "DISABLE"


class FilterType(StrEnum):
    AGE = "AGE"
    COUNT = "COUNT"


class TimeUnit(StrEnum):
    DAYS = "DAYS"
    WEEKS = "WEEKS"
    MONTHS = "MONTHS"
    YEARS = "YEARS"


class PolicyStatus(StrEnum):
    DISABLED = "DISABLED"
    ENABLED = "ENABLED"


class ResourceType(StrEnum):
    AMI_IMAGE = "AMI_IMAGE"
    CONTAINER_IMAGE = "CONTAINER_IMAGE"


class ExecutionStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    CANCELLED = "CANCELLED"
    CANCELLING = "CANCELLING"
    FAILED = "FAILED"
    SUCCESS = "SUCCESS"
    PENDING = "PENDING"


class ResourceStatus(StrEnum):
    FAILED = "FAILED"
    IN_PROGRESS = "IN_PROGRESS"
    SKIPPED = "SKIPPED"
    SUCCESS = "SUCCESS"


class ResourceActionName(StrEnum):
    AVAILABLE = "AVAILABLE"
    DELETE = "DELETE"
    DEPRECATE = "DEPRECATE"
    DISABLE = "DISABLE"


ResourceName = Annotated[
    str, StringConstraints(pattern=r"^[-_A-Za-z-0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z-0-9]$")
]
NonEmptyString = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
RoleNameOrArn = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=2048,
        pattern=r"^(?:arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/)?[a-zA-Z_0-9+=,.@\-_/]+$",
    ),
]
WildcardVersion = Annotated[str, StringConstraints(pattern=r"^(?:[0-9]+|x)\.(?:[0-9]+|x)\.(?:[0-9]+|x)$")]
AccountId = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
TagKey = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^(?!aws:)[a-zA-Z0-9\s_.:/=+\-@]*$")
]
TagValue = Annotated[str, StringConstraints(max_length=256)]
TagMap = Annotated[dict[TagKey, TagValue], Field(min_length=1, max_length=50)]
ClientToken = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# botocore's LifecyclePolicyArn demands an AWS-style region; kiln's default region is ``local``.
LIFECYCLE_POLICY_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z0-9-]+:(?:[0-9]{12}|aws):lifecycle-policy/[a-z0-9-_]+$"
)
PolicyArn = Annotated[str, StringConstraints(max_length=1024, pattern=LIFECYCLE_POLICY_ARN.pattern)]
EXECUTION_ID = re.compile(
    r"^lce-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, regex_engine="python-re")


class IncludeResources(_Shape):
    amis: bool | None = None
    snapshots: bool | None = None
    containers: bool | None = None


class DetailAction(_Shape):
    type: ActionType
    includeResources: IncludeResources | None = None

    @model_validator(mode="after")
    def _include_rules(self) -> DetailAction:
        inc = self.includeResources
        if inc is None:
            return self
        if inc.snapshots and not inc.amis:
            raise ValueError(
                "includeResources.snapshots needs includeResources.amis (snapshots belong to AMIs)"
            )
        if self.type is not ActionType.DELETE and (inc.snapshots or inc.containers):
            raise ValueError(f"{self.type.value} can include AMIs only; snapshots and containers need DELETE")
        return self


class DetailFilter(_Shape):
    type: FilterType
    value: Annotated[int, Field(ge=1, le=1000)]
    unit: TimeUnit | None = None
    retainAtLeast: Annotated[int, Field(ge=1, le=10)] | None = None

    @model_validator(mode="after")
    def _unit_rules(self) -> DetailFilter:
        if self.type is FilterType.AGE and self.unit is None:
            raise ValueError("an AGE filter requires unit (DAYS, WEEKS, MONTHS or YEARS)")
        if self.type is FilterType.COUNT and self.unit is not None:
            raise ValueError("a COUNT filter takes no unit")
        if self.type is FilterType.COUNT and self.retainAtLeast is not None:
            raise ValueError("a COUNT filter takes no retainAtLeast (its value already is the count kept)")
        return self


class LastLaunched(_Shape):
    value: Annotated[int, Field(ge=1, le=365)]
    unit: TimeUnit


class AmiExclusionRules(_Shape):
    isPublic: bool | None = None
    regions: list[NonEmptyString] | None = None
    sharedAccounts: Annotated[list[AccountId], Field(min_length=1, max_length=1536)] | None = None
    lastLaunched: LastLaunched | None = None
    tagMap: TagMap | None = None


class ExclusionRules(_Shape):
    tagMap: TagMap | None = None
    amis: AmiExclusionRules | None = None


class PolicyDetail(_Shape):
    action: DetailAction
    filter: DetailFilter
    exclusionRules: ExclusionRules | None = None

    @model_validator(mode="after")
    def _count_needs_delete(self) -> PolicyDetail:
        if self.filter.type is FilterType.COUNT and self.action.type is not ActionType.DELETE:
            raise ValueError(f"a COUNT filter can only be used with DELETE, not {self.action.type.value}")
        return self


class RecipeSelection(_Shape):
    name: ResourceName
    semanticVersion: WildcardVersion

    @model_validator(mode="after")
    def _wildcards_right_aligned(self) -> RecipeSelection:
        nodes = self.semanticVersion.split(".")
        if any(a == "x" and b != "x" for a, b in itertools.pairwise(nodes)):
            raise ValueError(
                f"semanticVersion {self.semanticVersion!r}: after an 'x' every node must be 'x' (e.g. 1.x.x)"
            )
        return self


class ResourceSelection(_Shape):
    recipes: Annotated[list[RecipeSelection], Field(min_length=1, max_length=50)] | None = None
    tagMap: TagMap | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ResourceSelection:
        if (self.recipes is None) == (self.tagMap is None):
            raise ValueError("give exactly one selection criterion: recipes or tagMap")
        return self


class _PolicyBody(_Shape):
    description: NonEmptyString | None = None
    status: PolicyStatus | None = None
    executionRole: RoleNameOrArn
    resourceType: ResourceType
    policyDetails: Annotated[list[PolicyDetail], Field(min_length=1, max_length=3)]
    resourceSelection: ResourceSelection
    # Required by the API, but SDKs and the AWS CLI fill it in; kiln does the same when absent.
    clientToken: ClientToken = Field(default_factory=lambda: str(uuid.uuid4()))

    @model_validator(mode="after")
    def _details_consistent(self) -> _PolicyBody:
        seen: set[ActionType] = set()
        for index, detail in enumerate(self.policyDetails):
            where = f"policyDetails[{index}]"
            if detail.action.type in seen:
                raise ValueError(
                    f"{where}: a policy has at most one rule per action type "
                    f"({detail.action.type.value} repeats)"
                )
            seen.add(detail.action.type)
            inc = detail.action.includeResources
            if self.resourceType is ResourceType.CONTAINER_IMAGE:
                if detail.action.type is not ActionType.DELETE:
                    raise ValueError(f"{where}: CONTAINER_IMAGE policies support only DELETE")
                if inc and (inc.amis or inc.snapshots):
                    raise ValueError(f"{where}: CONTAINER_IMAGE policies cannot include AMIs or snapshots")
                if detail.exclusionRules and detail.exclusionRules.amis:
                    raise ValueError(f"{where}: CONTAINER_IMAGE policies take no AMI exclusion rules")
            elif inc and inc.containers:
                raise ValueError(f"{where}: AMI_IMAGE policies cannot include containers")
        return self

    def detail(self, action: ActionType) -> PolicyDetail | None:
        return next((d for d in self.policyDetails if d.action.type is action), None)


class CreateLifecyclePolicyRequest(_PolicyBody):
    name: ResourceName
    tags: TagMap | None = None
    dryRun: bool | None = None


class UpdateLifecyclePolicyRequest(_PolicyBody):
    lifecyclePolicyArn: PolicyArn


class LifecyclePolicy(_Shape):
    """``GetLifecyclePolicy``'s ``lifecyclePolicy``."""

    arn: str
    name: str
    description: str | None = None
    status: PolicyStatus
    executionRole: str
    resourceType: ResourceType
    policyDetails: list[PolicyDetail]
    resourceSelection: ResourceSelection
    dateCreated: datetime
    dateUpdated: datetime | None = None
    dateLastRun: datetime | None = None
    tags: dict[str, str] | None = None

    def detail(self, action: ActionType) -> PolicyDetail | None:
        return next((d for d in self.policyDetails if d.action.type is action), None)


class LifecyclePolicySummary(_Shape):
    arn: str
    name: str
    description: str | None = None
    status: PolicyStatus
    executionRole: str
    resourceType: ResourceType
    dateCreated: datetime
    dateUpdated: datetime | None = None
    dateLastRun: datetime | None = None
    tags: dict[str, str] | None = None


class ExecutionState(_Shape):
    status: ExecutionStatus
    reason: str | None = None


class LifecycleExecution(_Shape):
    lifecycleExecutionId: str
    lifecyclePolicyArn: str
    resourcesImpactedSummary: dict[str, bool]
    state: ExecutionState
    startTime: datetime
    endTime: datetime | None = None


class ResourceState(_Shape):
    status: ResourceStatus
    reason: str | None = None


class ResourceAction(_Shape):
    name: ResourceActionName
    reason: str | None = None


class SnapshotResource(_Shape):
    snapshotId: str
    state: ResourceState


class LifecycleExecutionResource(_Shape):
    accountId: str
    resourceId: str
    state: ResourceState
    action: ResourceAction
    region: str
    snapshots: list[SnapshotResource] | None = None
    imageUris: list[str] | None = None
    startTime: datetime | None = None
    endTime: datetime | None = None


def normalized_name(name: str) -> str:
    """The ARN form of a name: names differing only in case, spaces or underscores are one name."""
    return re.sub(r"[ _]", "-", name.lower())


def policy_arn(name: str, *, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:aws:imagebuilder:{region}:{account}:lifecycle-policy/{normalized_name(name)}"


def new_execution_id() -> str:
    return f"lce-{uuid.uuid4()}"


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not part.startswith(("function-", "constrained-")):
            out += f".{part}" if out else part
    return out


Shape = TypeVar("Shape", bound=BaseModel)


def parse(shape: type[Shape], body: Any, *, where: str = "") -> Shape:
    """Validate ``body`` as ``shape``; raise one InvalidInput naming the first bad field."""
    if not isinstance(body, dict):
        raise InvalidInput(f"expected an object, got {type(body).__name__}", location=where or None)
    try:
        return shape.model_validate(body)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        loc = _location(tuple(first["loc"]))
        location = ".".join(p for p in (where, loc) if p) or where or None
        if first["type"] == "extra_forbidden":
            message = f"unknown field {str(first['loc'][-1])!r}"
        elif first["type"] == "missing":
            message = "required field is missing"
        else:
            message = first["msg"].removeprefix("Value error, ")
        more = len(error.errors()) - 1
        hint = f"{more} more problem(s) after fixing this one" if more else None
        raise InvalidInput(message, location=location, hint=hint) from None
