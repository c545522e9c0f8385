"""The CreateImage request (also ``kiln apply``'s ``Image`` kind, CloudFormation's AWS::ImageBuilder::Image)."""

from __future__ import annotations

from pydantic import field_validator, model_validator

from kiln.model.pipeline import ImageScanningConfiguration, ImageTestsConfiguration, WorkflowConfiguration
from kiln.model.shapes import ClientToken, NonEmptyString, Shape, TagMap, check_arn


class ImageLoggingConfiguration(Shape):
    logGroupName: NonEmptyString | None = None


class CreateImageRequest(Shape):
    imageRecipeArn: str | None = None
    containerRecipeArn: str | None = None
    distributionConfigurationArn: str | None = None
    infrastructureConfigurationArn: str
    imageTestsConfiguration: ImageTestsConfiguration | None = None
    enhancedImageMetadataEnabled: bool | None = None
    tags: TagMap | None = None
    clientToken: ClientToken | None = None
    imageScanningConfiguration: ImageScanningConfiguration | None = None
    workflows: list[WorkflowConfiguration] | None = None
    executionRole: NonEmptyString | None = None
    loggingConfiguration: ImageLoggingConfiguration | None = None

    @field_validator("imageRecipeArn")
    @classmethod
    def _recipe(cls, value: str | None) -> str | None:
        return None if value is None else check_arn(value, "image-recipe")

    @field_validator("containerRecipeArn")
    @classmethod
    def _container_recipe(cls, value: str | None) -> str | None:
        return None if value is None else check_arn(value, "container-recipe")

    @field_validator("infrastructureConfigurationArn")
    @classmethod
    def _infrastructure(cls, value: str) -> str:
        return check_arn(value, "infrastructure-configuration")

    @field_validator("distributionConfigurationArn")
    @classmethod
    def _distribution(cls, value: str | None) -> str | None:
        return None if value is None else check_arn(value, "distribution-configuration")

    @model_validator(mode="after")
    def _one_recipe(self) -> CreateImageRequest:
        if (self.imageRecipeArn is None) == (self.containerRecipeArn is None):
            raise ValueError("give exactly one of imageRecipeArn or containerRecipeArn")
        return self
