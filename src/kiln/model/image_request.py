"""The CreateImage request (also ``kiln apply``'s ``Image`` kind, CloudFormation's AWS::ImageBuilder::Image)."""

from __future__ import annotations

from kiln.model.pipeline import BuildInputs
from kiln.model.shapes import NonEmptyString, Shape, TagMap


class ImageLoggingConfiguration(Shape):
    logGroupName: NonEmptyString | None = None


class CreateImageRequest(BuildInputs):
    tags: TagMap | None = None
    executionRole: NonEmptyString | None = None
    loggingConfiguration: ImageLoggingConfiguration | None = None
