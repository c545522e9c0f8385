"""Container recipe shapes: CreateContainerRecipe request, ContainerRecipe / ContainerRecipeSummary."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from kiln.model.recipe import ComponentConfiguration, InstanceBlockDeviceMapping, Str1024
from kiln.model.shapes import ClientToken, ConcreteVersion, NonEmptyString, Platform, ResourceName, Shape, TagMap


class InstanceConfiguration(Shape):
    """The build host on AWS (an ECS-optimized AMI by default); kiln builds in its own sandboxes."""

    image: Str1024 | None = None
    blockDeviceMappings: list[InstanceBlockDeviceMapping] | None = None


class TargetContainerRepository(Shape):
    service: Literal["ECR"]
    repositoryName: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class CreateContainerRecipeRequest(Shape):
    containerType: Literal["DOCKER"]
    name: ResourceName
    description: NonEmptyString | None = None
    semanticVersion: ConcreteVersion
    components: Annotated[list[ComponentConfiguration], Field(min_length=1)] | None = None
    instanceConfiguration: InstanceConfiguration | None = None
    dockerfileTemplateData: Annotated[str, StringConstraints(min_length=1, max_length=16000)] | None = None
    dockerfileTemplateUri: str | None = None
    platformOverride: Platform | None = None
    imageOsVersionOverride: NonEmptyString | None = None
    parentImage: Str1024
    tags: TagMap | None = None
    workingDirectory: Str1024 | None = None
    targetRepository: TargetContainerRepository
    kmsKeyId: NonEmptyString | None = None
    clientToken: ClientToken | None = None
    dryRun: bool | None = None


class ContainerRecipe(Shape):
    """The GetContainerRecipe response's ``containerRecipe``."""

    arn: str
    containerType: Literal["DOCKER"] = "DOCKER"
    name: str
    description: str | None = None
    platform: Platform
    owner: str
    version: str
    components: list[ComponentConfiguration] | None = None
    instanceConfiguration: InstanceConfiguration | None = None
    dockerfileTemplateData: str | None = None
    kmsKeyId: str | None = None
    encrypted: bool | None = None
    parentImage: str
    dateCreated: str
    tags: dict[str, str] | None = None
    workingDirectory: str | None = None
    targetRepository: TargetContainerRepository


class ContainerRecipeSummary(Shape):
    arn: str
    containerType: Literal["DOCKER"] = "DOCKER"
    name: str
    platform: Platform
    owner: str
    parentImage: str
    dateCreated: str
    instanceImage: str | None = None
    tags: dict[str, str] | None = None
