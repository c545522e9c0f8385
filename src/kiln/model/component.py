"""Component shapes: CreateComponent request, Component / ComponentVersion responses."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from kiln.model.shapes import (
    ClientToken,
    ConcreteVersion,
    NonEmptyString,
    Platform,
    ResourceName,
    Shape,
    TagMap,
)

ComponentType = Literal["BUILD", "TEST"]


class CreateComponentRequest(Shape):
    name: ResourceName
    semanticVersion: ConcreteVersion
    description: NonEmptyString | None = None
    changeDescription: NonEmptyString | None = None
    platform: Platform
    supportedOsVersions: (
        Annotated[list[Annotated[str, StringConstraints(min_length=1)]], Field(min_length=1, max_length=25)]
        | None
    ) = None
    data: Annotated[str, StringConstraints(min_length=1, max_length=16000, pattern=r"^[^\x00]+$")] | None = (
        None
    )
    uri: str | None = None
    kmsKeyId: NonEmptyString | None = None
    tags: TagMap | None = None
    clientToken: ClientToken | None = None
    dryRun: bool | None = None

    @model_validator(mode="after")
    def _data_xor_uri(self) -> CreateComponentRequest:
        if (self.data is None) == (self.uri is None):
            raise ValueError("give exactly one of data (the document inline) or uri (file:// or s3://)")
        return self


class ComponentState(Shape):
    status: Literal["DEPRECATED", "DISABLED", "ACTIVE"] | None = None
    reason: NonEmptyString | None = None


class ComponentParameterDetail(Shape):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    type: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    defaultValue: list[str] | None = None
    description: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None


class Component(Shape):
    """The GetComponent response's ``component``."""

    arn: str
    name: str
    version: str
    description: str | None = None
    changeDescription: str | None = None
    type: ComponentType
    platform: Platform
    supportedOsVersions: list[str] | None = None
    state: ComponentState | None = None
    parameters: list[ComponentParameterDetail] | None = None
    owner: str
    data: str | None = None
    kmsKeyId: str | None = None
    encrypted: bool | None = None
    dateCreated: str
    tags: dict[str, str] | None = None
    publisher: str | None = None
    obfuscate: bool | None = None


class ComponentVersion(Shape):
    """One ListComponents entry (version ARN, no build node)."""

    arn: str
    name: str
    version: str
    description: str | None = None
    platform: Platform
    supportedOsVersions: list[str] | None = None
    type: ComponentType
    owner: str
    dateCreated: str
    status: Literal["DEPRECATED", "DISABLED", "ACTIVE"] | None = None


class ComponentSummary(Shape):
    """One ListComponentBuildVersions entry (build ARN)."""

    arn: str
    name: str
    version: str
    platform: Platform
    supportedOsVersions: list[str] | None = None
    state: ComponentState | None = None
    type: ComponentType
    owner: str
    description: str | None = None
    changeDescription: str | None = None
    dateCreated: str
    tags: dict[str, str] | None = None
