"""Image pipeline shapes: Create/Update/StartExecution requests and the ImagePipeline response.

Field names, enums and limits are the botocore ``imagebuilder`` model's. Resource references take
full ARNs (as Image Builder) or kiln's short forms (``image-recipe/NAME/1.x.x``); the service stores
the full form.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from kiln.model.shapes import ClientToken, NonEmptyString, ResourceName, Shape, TagMap, check_arn

PipelineStatus = Literal["ENABLED", "DISABLED"]
StartCondition = Literal["EXPRESSION_MATCH_ONLY", "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE"]
DEFAULT_START_CONDITION: StartCondition = "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE"
DEFAULT_TESTS_TIMEOUT = 720

Timezone = Annotated[
    str, StringConstraints(min_length=3, max_length=100, pattern=r"^[a-zA-Z0-9]{2,}(?:/[a-zA-Z0-9-_+]+)*$")
]
LogGroupName = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^[a-zA-Z0-9\-_/\.]{1,512}$")]
RoleNameOrArn = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=2048, pattern=r"^(?:arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/)?[a-zA-Z_0-9+=,.@\-_/]+$"
    ),
]
WorkflowArn = Annotated[
    str,
    StringConstraints(
        pattern=r"^(?:arn:aws(?:-[a-z]+)*:imagebuilder:[^:]+:(?:[0-9]{12}|aws(?:-[a-z-]+)?):)?"
        r"workflow/(build|test|distribution)/[a-z0-9-_]+/"
        r"(?:(?:([0-9]+|x)\.([0-9]+|x)\.([0-9]+|x))|(?:[0-9]+\.[0-9]+\.[0-9]+/[0-9]+))$"
    ),
]


class AutoDisablePolicy(Shape):
    failureCount: Annotated[int, Field(ge=1, le=10)]


class Schedule(Shape):
    scheduleExpression: NonEmptyString | None = None
    timezone: Timezone | None = None
    pipelineExecutionStartCondition: StartCondition | None = None
    autoDisablePolicy: AutoDisablePolicy | None = None


class ImageTestsConfiguration(Shape):
    imageTestsEnabled: bool | None = None
    timeoutMinutes: Annotated[int, Field(ge=60, le=1440)] | None = None


class EcrConfiguration(Shape):
    repositoryName: NonEmptyString | None = None
    containerTags: list[NonEmptyString] | None = None


class ScanResultCondition(Shape):
    maximumSeverityLabel: Literal["INFORMATIONAL", "LOW", "MEDIUM", "HIGH"]
    fixAvailable: bool | None = None


class ImageScanningConfiguration(Shape):
    imageScanningEnabled: bool | None = None
    ecrConfiguration: EcrConfiguration | None = None  # accepted; kiln scans AMIs, not ECR images
    imageScanningTypes: Annotated[list[Literal["TEST_INSTANCE_CVE", "ON_DEMAND_AMI_CVE"]],
                                  Field(min_length=1, max_length=1)] | None = None
    scanResultCondition: ScanResultCondition | None = None


class WorkflowParameter(Shape):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00]+$")]
    value: list[Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]]


class WorkflowConfiguration(Shape):
    workflowArn: WorkflowArn
    parameters: Annotated[list[WorkflowParameter], Field(min_length=1)] | None = None
    parallelGroup: Annotated[
        str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9-_+#]{0,99}$")
    ] | None = None
    onFailure: Literal["CONTINUE", "ABORT"] | None = None


class PipelineLoggingConfiguration(Shape):
    imageLogGroupName: LogGroupName | None = None
    pipelineLogGroupName: LogGroupName | None = None


class BuildInputs(Shape):
    """What CreateImage and the pipelines share: the recipe (image or container), the configurations,
    tests, scanning and workflows."""

    imageRecipeArn: str | None = None
    containerRecipeArn: str | None = None
    infrastructureConfigurationArn: str
    distributionConfigurationArn: str | None = None
    imageTestsConfiguration: ImageTestsConfiguration | None = None
    enhancedImageMetadataEnabled: bool | None = None
    clientToken: ClientToken | None = None
    imageScanningConfiguration: ImageScanningConfiguration | None = None
    workflows: list[WorkflowConfiguration] | None = None

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
    def _one_recipe(self) -> BuildInputs:
        if (self.imageRecipeArn is None) == (self.containerRecipeArn is None):
            raise ValueError("give exactly one of imageRecipeArn or containerRecipeArn")
        return self


class _PipelineFields(BuildInputs):
    """What Create and Update share (Update cannot change name or tags)."""

    description: NonEmptyString | None = None
    schedule: Schedule | None = None
    status: PipelineStatus | None = None
    imageTags: TagMap | None = None
    executionRole: RoleNameOrArn | None = None
    loggingConfiguration: PipelineLoggingConfiguration | None = None


class CreateImagePipelineRequest(_PipelineFields):
    name: ResourceName
    tags: TagMap | None = None


# kiln's approval switch on an ImagePipeline document of ``kiln apply`` (never on the wire): true puts the
# managed test-and-approve-image in the pipeline's workflows (kiln.services.workflows.managed_approval).
APPROVAL_KEY = "kiln:approval"


class ImagePipelineDocument(CreateImagePipelineRequest):
    """A ``kiln apply`` ImagePipeline document: the CreateImagePipeline body plus ``kiln:approval``."""

    approval: bool | None = Field(None, alias=APPROVAL_KEY)


class UpdateImagePipelineRequest(_PipelineFields):
    imagePipelineArn: str

    @field_validator("imagePipelineArn")
    @classmethod
    def _pipeline(cls, value: str) -> str:
        return check_arn(value, "image-pipeline")


MUTABLE_FIELDS = tuple(name for name in _PipelineFields.model_fields if name != "clientToken")


class StartImagePipelineExecutionRequest(Shape):
    imagePipelineArn: str
    clientToken: ClientToken | None = None
    tags: TagMap | None = None

    @field_validator("imagePipelineArn")
    @classmethod
    def _pipeline(cls, value: str) -> str:
        return check_arn(value, "image-pipeline")


class ImagePipeline(Shape):
    """GetImagePipeline's ``imagePipeline`` (also the entries of ListImagePipelines)."""

    arn: str
    name: str
    description: str | None = None
    platform: Literal["Windows", "Linux", "macOS"] | None = None
    enhancedImageMetadataEnabled: bool | None = None
    imageRecipeArn: str | None = None
    containerRecipeArn: str | None = None
    infrastructureConfigurationArn: str | None = None
    distributionConfigurationArn: str | None = None
    imageTestsConfiguration: ImageTestsConfiguration | None = None
    schedule: Schedule | None = None
    status: PipelineStatus | None = None
    dateCreated: str | None = None
    dateUpdated: str | None = None
    dateLastRun: str | None = None
    lastRunStatus: str | None = None
    dateNextRun: str | None = None
    tags: dict[str, str] | None = None
    imageScanningConfiguration: ImageScanningConfiguration | None = None
    imageTags: dict[str, str] | None = None
    executionRole: str | None = None
    workflows: list[WorkflowConfiguration] | None = None
    loggingConfiguration: PipelineLoggingConfiguration | None = None
    consecutiveFailures: int | None = None
