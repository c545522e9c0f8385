"""Distribution configuration shapes: Create/Update requests, DistributionConfiguration responses."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from kiln.model.organizations import ORGANIZATION_ARN_PATTERN, OU_ARN_PATTERN
from kiln.model.shapes import AccountId, ClientToken, NonEmptyString, ResourceName, Shape, TagMap
from kiln.model.templates import check_name_template

DEFAULT_TIMEOUT_MINUTES = 720
Str1024 = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
AmiName = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=127, pattern=r"^[-_A-Za-z0-9{][-_A-Za-z0-9\s:{}\.]+[-_A-Za-z0-9}]$"
    ),
]
OrganizationArn = Annotated[str, StringConstraints(pattern=ORGANIZATION_ARN_PATTERN)]
OrganizationalUnitArn = Annotated[str, StringConstraints(pattern=OU_ARN_PATTERN)]
LaunchTemplateId = Annotated[str, StringConstraints(pattern=r"^lt-[a-z0-9-_]{17}$")]


class LaunchPermissionConfiguration(Shape):
    userIds: Annotated[list[AccountId], Field(min_length=1, max_length=1536)] | None = None
    userGroups: list[Str1024] | None = None
    organizationArns: Annotated[list[OrganizationArn], Field(min_length=1, max_length=25)] | None = None
    organizationalUnitArns: (
        Annotated[list[OrganizationalUnitArn], Field(min_length=1, max_length=25)] | None
    ) = None


class AmiDistributionConfiguration(Shape):
    name: AmiName | None = None
    description: NonEmptyString | None = None
    targetAccountIds: Annotated[list[AccountId], Field(min_length=1, max_length=1536)] | None = None
    amiTags: TagMap | None = None
    kmsKeyId: Str1024 | None = None
    launchPermission: LaunchPermissionConfiguration | None = None

    @field_validator("name")
    @classmethod
    def _template(cls, value: str) -> str:
        check_name_template(value)
        return value


class TargetContainerRepository(Shape):
    service: Literal["ECR"]
    repositoryName: Str1024


class ContainerDistributionConfiguration(Shape):
    description: NonEmptyString | None = None
    containerTags: list[Str1024] | None = None
    targetRepository: TargetContainerRepository


class LaunchTemplateConfiguration(Shape):
    launchTemplateId: LaunchTemplateId
    accountId: AccountId | None = None
    setDefaultVersion: bool | None = None


class S3ExportConfiguration(Shape):
    roleName: Str1024
    diskImageFormat: Literal["VMDK", "RAW", "VHD"]
    s3Bucket: Str1024
    s3Prefix: Str1024 | None = None


class FastLaunchSnapshotConfiguration(Shape):
    targetResourceCount: Annotated[int, Field(ge=1, le=10000)] | None = None


class FastLaunchLaunchTemplateSpecification(Shape):
    launchTemplateId: LaunchTemplateId | None = None
    launchTemplateName: Str1024 | None = None
    launchTemplateVersion: Str1024 | None = None


class FastLaunchConfiguration(Shape):
    enabled: bool
    snapshotConfiguration: FastLaunchSnapshotConfiguration | None = None
    maxParallelLaunches: Annotated[int, Field(ge=1)] | None = None
    launchTemplate: FastLaunchLaunchTemplateSpecification | None = None
    accountId: AccountId | None = None


class SsmParameterConfiguration(Shape):
    amiAccountId: AccountId | None = None
    parameterName: Annotated[
        str, StringConstraints(min_length=1, max_length=1011, pattern=r"^[a-zA-Z0-9_.\-\/]+$")
    ]
    dataType: Literal["text", "aws:ec2:image"] | None = None


AWS_PUBLISH_KEY = "kiln:AwsPublish"
AwsRegion = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")]


class AwsPublishConfiguration(Shape):
    """kiln's extension of a distribution (``kiln:AwsPublish``, a list of these): the region's AMI
    published to AWS as a real AMI (``kiln image publish --to aws``) at the distribution step."""

    region: AwsRegion
    profile: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\w.@+=,-]+$")] | None = None
    endpointUrl: Annotated[str, StringConstraints(max_length=512, pattern=r"^https?://\S+$")] | None = None
    launchPermission: LaunchPermissionConfiguration | None = None


# Image Builder takes any 1..1024-character string; kiln's regions are image store directories, so
# names are restricted to what AWS region names look like (lower-case letters, digits, hyphens).
RegionName = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$")]


class Distribution(Shape):
    model_config = ConfigDict(**Shape.model_config, serialize_by_alias=True)

    region: RegionName
    amiDistributionConfiguration: AmiDistributionConfiguration | None = None
    containerDistributionConfiguration: ContainerDistributionConfiguration | None = None
    licenseConfigurationArns: Annotated[list[str], Field(min_length=1, max_length=50)] | None = None
    launchTemplateConfigurations: (
        Annotated[list[LaunchTemplateConfiguration], Field(min_length=1, max_length=100)] | None
    ) = None
    s3ExportConfiguration: S3ExportConfiguration | None = None
    fastLaunchConfigurations: (
        Annotated[list[FastLaunchConfiguration], Field(min_length=1, max_length=1000)] | None
    ) = None
    ssmParameterConfigurations: list[SsmParameterConfiguration] | None = None
    awsPublish: Annotated[list[AwsPublishConfiguration], Field(min_length=1, max_length=20)] | None = Field(
        None, alias=AWS_PUBLISH_KEY)


def _unique_regions(distributions: list[Distribution]) -> list[Distribution]:
    seen: set[str] = set()
    for distribution in distributions:
        if distribution.region in seen:
            raise ValueError(f"region {distribution.region!r} appears in more than one distribution")
        seen.add(distribution.region)
    return distributions


class CreateDistributionConfigurationRequest(Shape):
    name: ResourceName
    description: NonEmptyString | None = None
    distributions: Annotated[list[Distribution], Field(min_length=1)]
    tags: TagMap | None = None
    clientToken: ClientToken | None = None
    dryRun: bool | None = None

    @model_validator(mode="after")
    def _regions(self) -> CreateDistributionConfigurationRequest:
        _unique_regions(self.distributions)
        return self


class UpdateDistributionConfigurationRequest(Shape):
    distributionConfigurationArn: str
    description: NonEmptyString | None = None
    distributions: Annotated[list[Distribution], Field(min_length=1)]
    clientToken: ClientToken | None = None

    @model_validator(mode="after")
    def _regions(self) -> UpdateDistributionConfigurationRequest:
        _unique_regions(self.distributions)
        return self


class DistributionConfiguration(Shape):
    """The GetDistributionConfiguration response's ``distributionConfiguration``."""

    arn: str
    name: str
    description: str | None = None
    distributions: list[Distribution]
    timeoutMinutes: int = DEFAULT_TIMEOUT_MINUTES
    dateCreated: str
    dateUpdated: str | None = None
    tags: dict[str, str] | None = None


class DistributionConfigurationSummary(Shape):
    arn: str
    name: str
    description: str | None = None
    dateCreated: str
    dateUpdated: str | None = None
    tags: dict[str, str] | None = None
    regions: list[str] | None = None
