"""Workflow shapes: the CreateWorkflow request (Image Builder's field names)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import StringConstraints, model_validator

from kiln.model.shapes import ClientToken, ConcreteVersion, NonEmptyString, ResourceName, Shape, TagMap

WorkflowType = Literal["BUILD", "TEST", "DISTRIBUTION"]


class CreateWorkflowRequest(Shape):
    name: ResourceName
    semanticVersion: ConcreteVersion
    type: WorkflowType
    description: NonEmptyString | None = None
    changeDescription: NonEmptyString | None = None
    data: Annotated[str, StringConstraints(min_length=1, max_length=16000, pattern=r"^[^\x00]+$")] | None = None
    uri: str | None = None
    kmsKeyId: NonEmptyString | None = None  # recorded; kiln encrypts nothing
    tags: TagMap | None = None
    clientToken: ClientToken | None = None
    dryRun: bool | None = None

    @model_validator(mode="after")
    def _data_xor_uri(self) -> CreateWorkflowRequest:
        if (self.data is None) == (self.uri is None):
            raise ValueError("give exactly one of data (the document inline) or uri (file:// or s3://)")
        return self
