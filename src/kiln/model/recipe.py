"""Image recipe shapes: CreateImageRecipe request, ImageRecipe / ImageRecipeSummary responses."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from kiln.model.component import ComponentType as ComponentType
from kiln.model.shapes import (
    ClientToken,
    ConcreteVersion,
    NonEmptyString,
    Platform,
    ResourceName,
    Shape,
    TagMap,
    check_arn,
)

Str1024 = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class ComponentParameter(Shape):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00]+$")]
    value: list[Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]]


class ComponentConfiguration(Shape):
    componentArn: str
    parameters: Annotated[list[ComponentParameter], Field(min_length=1)] | None = None

    @field_validator("componentArn")
    @classmethod
    def _arn(cls, value: str) -> str:
        return check_arn(value, "component")


class EbsInstanceBlockDeviceSpecification(Shape):
    encrypted: bool | None = None
    deleteOnTermination: bool | None = None
    iops: Annotated[int, Field(ge=100, le=64000)] | None = None
    kmsKeyId: Str1024 | None = None
    snapshotId: Str1024 | None = None
    volumeSize: Annotated[int, Field(ge=1, le=16000)] | None = None
    volumeType: Literal["standard", "io1", "io2", "gp2", "gp3", "sc1", "st1"] | None = None
    throughput: Annotated[int, Field(ge=125, le=1000)] | None = None


class InstanceBlockDeviceMapping(Shape):
    deviceName: Str1024 | None = None
    ebs: EbsInstanceBlockDeviceSpecification | None = None
    virtualName: Str1024 | None = None
    noDevice: Annotated[str, StringConstraints(max_length=0)] | None = None


class SystemsManagerAgent(Shape):
    uninstallAfterBuild: bool | None = None


class AdditionalInstanceConfiguration(Shape):
    systemsManagerAgent: SystemsManagerAgent | None = None
    userDataOverride: (
        Annotated[
            str,
            StringConstraints(
                min_length=1,
                max_length=21847,
                pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
            ),
        ]
        | None
    ) = None


class CreateImageRecipeRequest(Shape):
    name: ResourceName
    description: NonEmptyString | None = None
    semanticVersion: ConcreteVersion
    components: Annotated[list[ComponentConfiguration], Field(min_length=1)] | None = None
    parentImage: Str1024
    blockDeviceMappings: list[InstanceBlockDeviceMapping] | None = None
    tags: TagMap | None = None
    workingDirectory: Str1024 | None = None
    additionalInstanceConfiguration: AdditionalInstanceConfiguration | None = None
    amiTags: TagMap | None = None
    amiWatermarks: list[Annotated[str, StringConstraints(min_length=3, max_length=128)]] | None = None
    clientToken: ClientToken | None = None
    dryRun: bool | None = None


class ImageRecipe(Shape):
    """The GetImageRecipe response's ``imageRecipe``."""

    arn: str
    type: Literal["AMI", "DOCKER"] = "AMI"
    name: str
    description: str | None = None
    platform: Platform
    owner: str
    version: str
    components: list[ComponentConfiguration] | None = None
    parentImage: str
    blockDeviceMappings: list[InstanceBlockDeviceMapping] | None = None
    dateCreated: str
    tags: dict[str, str] | None = None
    workingDirectory: str | None = None
    additionalInstanceConfiguration: AdditionalInstanceConfiguration | None = None
    amiTags: dict[str, str] | None = None
    amiWatermarks: list[str] | None = None


class ImageRecipeSummary(Shape):
    arn: str
    name: str
    platform: Platform
    owner: str
    parentImage: str
    dateCreated: str
    tags: dict[str, str] | None = None
