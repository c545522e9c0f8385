"""Infrastructure configuration shapes: Create/Update requests, InfrastructureConfiguration responses.

``instanceProfileName`` is required by Image Builder; kiln has no IAM, so it is optional here and
defaults to ``EC2InstanceProfileForImageBuilder`` (the profile AWS's documentation uses), which keeps
a definition written for kiln valid on AWS.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from kiln.model.shapes import ClientToken, NonEmptyString, ResourceName, ResourceTagMap, Shape, TagMap

DEFAULT_INSTANCE_PROFILE = "EC2InstanceProfileForImageBuilder"
Str1024 = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
InstanceProfileName = Annotated[
    str, StringConstraints(min_length=1, max_length=256, pattern=r"^[\w+=,.@-]+$")
]
SnsTopicArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[^:]*:sns:[^:]+:[0-9]{12}:[a-zA-Z0-9-_]{1,256}$")
]


class S3Logs(Shape):
    s3BucketName: Str1024 | None = None
    s3KeyPrefix: Str1024 | None = None


class Logging(Shape):
    s3Logs: S3Logs | None = None


class InstanceMetadataOptions(Shape):
    httpTokens: Literal["optional", "required"] | None = None
    httpPutResponseHopLimit: Annotated[int, Field(ge=1, le=64)] | None = None


class Placement(Shape):
    availabilityZone: Str1024 | None = None
    tenancy: Literal["default", "dedicated", "host"] | None = None
    hostId: Str1024 | None = None
    hostResourceGroupArn: Str1024 | None = None

    @model_validator(mode="after")
    def _host(self) -> Placement:
        if self.hostId and self.hostResourceGroupArn:
            raise ValueError("give hostId or hostResourceGroupArn, not both")
        return self


class AutoScalingGroupConfiguration(Shape):
    name: Str1024
    capacityWaitTimeoutSeconds: Annotated[int, Field(ge=0, le=3600)] | None = None


class ParentInstanceConfiguration(Shape):
    autoScalingGroup: AutoScalingGroupConfiguration


class _InfrastructureFields(Shape):
    description: NonEmptyString | None = None
    instanceTypes: list[str] | None = None
    instanceProfileName: InstanceProfileName | None = None
    securityGroupIds: list[Str1024] | None = None
    subnetId: Str1024 | None = None
    logging: Logging | None = None
    keyPair: Str1024 | None = None
    terminateInstanceOnFailure: bool | None = None
    terminateInstanceOnCompletion: bool | None = None
    snsTopicArn: SnsTopicArn | None = None
    resourceTags: ResourceTagMap | None = None
    instanceMetadataOptions: InstanceMetadataOptions | None = None
    placement: Placement | None = None
    parentInstance: ParentInstanceConfiguration | None = None
    clientToken: ClientToken | None = None


class CreateInfrastructureConfigurationRequest(_InfrastructureFields):
    name: ResourceName
    tags: TagMap | None = None
    dryRun: bool | None = None


class UpdateInfrastructureConfigurationRequest(_InfrastructureFields):
    infrastructureConfigurationArn: str


MUTABLE_FIELDS = tuple(name for name in _InfrastructureFields.model_fields if name != "clientToken")


class InfrastructureConfiguration(Shape):
    """The GetInfrastructureConfiguration response's ``infrastructureConfiguration``."""

    arn: str
    name: str
    description: str | None = None
    instanceTypes: list[str] | None = None
    instanceProfileName: str | None = None
    securityGroupIds: list[str] | None = None
    subnetId: str | None = None
    logging: Logging | None = None
    keyPair: str | None = None
    terminateInstanceOnFailure: bool | None = None
    snsTopicArn: str | None = None
    dateCreated: str
    dateUpdated: str | None = None
    resourceTags: dict[str, str] | None = None
    instanceMetadataOptions: InstanceMetadataOptions | None = None
    tags: dict[str, str] | None = None
    placement: Placement | None = None
    terminateInstanceOnCompletion: bool | None = None
    parentInstance: ParentInstanceConfiguration | None = None


class InfrastructureConfigurationSummary(Shape):
    arn: str
    name: str
    description: str | None = None
    dateCreated: str
    dateUpdated: str | None = None
    resourceTags: dict[str, str] | None = None
    tags: dict[str, str] | None = None
    instanceTypes: list[str] | None = None
    instanceProfileName: str | None = None
    placement: Placement | None = None
