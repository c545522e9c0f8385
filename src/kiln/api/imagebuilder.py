"""Image Builder operations on the wire: each a call of the services with the caller's account and region.

A handler takes the parsed input (member names as in the botocore model) and the caller, and returns
the whole answer; the protocol layer pages List answers and renders errors.
"""

from __future__ import annotations

from typing import Any

from kiln.api import rest_json
from kiln.api.errors import Dialect
from kiln.api.paging import Limits
from kiln.api.protocol import Handler, Kept, Service
from kiln.api.sigv4 import Caller
from kiln.errors import NotFound
from kiln.model.arn import MANAGED_ACCOUNT
from kiln.model.shapes import new_request_id
from kiln.services import build_queue, image_versions
from kiln.services.common import tags
from kiln.services.common.unchanged import while_unchanged
from kiln.services.components import resource as components
from kiln.services.configurations import distribution, infrastructure
from kiln.services.container_recipes import resource as container_recipes
from kiln.services.inventory.packages import list_image_packages
from kiln.services.lifecycle import policies as lifecycle
from kiln.services.pipelines import resource as pipelines
from kiln.services.recipes import resource as recipes
from kiln.services.scanning import image_builder as scan_findings
from kiln.services.workflows import executions as workflow_executions
from kiln.services.workflows import resource as workflows


def _body(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def _list_key(params: dict[str, Any]) -> dict[str, Any]:
    """The filter arguments the services take; paging is the protocol layer's."""
    return {"filters": params.get("filters")}


def _execution_resources(params: dict[str, Any], caller: str, region: str) -> dict[str, Any]:
    execution_id = params["lifecycleExecutionId"]
    execution = lifecycle.get_execution(execution_id, caller=caller, region=region)
    resources = lifecycle.list_execution_resources(execution_id, params.get("parentResourceId"), caller=caller,
                                                   region=region)
    return {
        "lifecycleExecutionId": execution_id,
        "lifecycleExecutionState": execution.state.model_dump(mode="json", exclude_none=True),
        "resources": [resource.model_dump(mode="json", exclude_none=True) for resource in resources],
    }


@while_unchanged
def _image(arn: str, caller: str, region: str) -> dict[str, Any]:
    """GetImage's image, read once while nothing is committed (a build's progress is a commit): clients
    poll it. The answer is only serialized, never changed."""
    return image_versions.get_image(arn, caller=caller, region=region)["image"]


def _get_image(p: dict[str, Any], c: Caller) -> dict[str, Any]:
    image = _image(p["imageBuildVersionArn"], c.account_id, c.region)
    return Kept({"requestId": new_request_id(), "image": image}, (image,))  # the wire puts the request's id


HANDLERS: dict[str, Handler] = {
    # components
    "CreateComponent": lambda p, c: components.create_component(_body(p), account=c.account_id, region=c.region),
    "GetComponent": lambda p, c: components.get_component(p["componentBuildVersionArn"], caller=c.account_id,
                                                          region=c.region),
    "ListComponents": lambda p, c: components.list_components(
        owner=p.get("owner") or "Self", by_name=bool(p.get("byName")), account=c.account_id, region=c.region,
        **_list_key(p)
    ),
    "ListComponentBuildVersions": lambda p, c: components.list_component_build_versions(
        p["componentVersionArn"], caller=c.account_id
    ),
    "DeleteComponent": lambda p, c: components.delete_component(
        p["componentBuildVersionArn"], caller=c.account_id, region=c.region
    ),
    # recipes
    "CreateImageRecipe": lambda p, c: recipes.create_image_recipe(_body(p), account=c.account_id, region=c.region),
    "GetImageRecipe": lambda p, c: recipes.get_image_recipe(p["imageRecipeArn"], caller=c.account_id,
                                                            region=c.region),
    "ListImageRecipes": lambda p, c: recipes.list_image_recipes(
        owner=p.get("owner") or "Self", account=c.account_id, region=c.region, **_list_key(p)
    ),
    "DeleteImageRecipe": lambda p, c: recipes.delete_image_recipe(p["imageRecipeArn"], caller=c.account_id,
                                                                  region=c.region),
    # container recipes
    "CreateContainerRecipe": lambda p, c: container_recipes.create_container_recipe(
        _body(p), account=c.account_id, region=c.region
    ),
    "GetContainerRecipe": lambda p, c: container_recipes.get_container_recipe(
        p["containerRecipeArn"], caller=c.account_id
    ),
    "GetContainerRecipePolicy": lambda p, c: container_recipes.get_container_recipe_policy(
        p["containerRecipeArn"], caller=c.account_id
    ),
    "ListContainerRecipes": lambda p, c: container_recipes.list_container_recipes(
        owner=p.get("owner") or "Self", account=c.account_id, region=c.region, **_list_key(p)
    ),
    "DeleteContainerRecipe": lambda p, c: container_recipes.delete_container_recipe(
        p["containerRecipeArn"], caller=c.account_id
    ),
    # infrastructure and distribution configurations
    "CreateInfrastructureConfiguration": lambda p, c: infrastructure.create_infrastructure_configuration(
        _body(p), account=c.account_id, region=c.region
    ),
    "UpdateInfrastructureConfiguration": lambda p, c: infrastructure.update_infrastructure_configuration(
        _body(p), caller=c.account_id, region=c.region
    ),
    "GetInfrastructureConfiguration": lambda p, c: infrastructure.get_infrastructure_configuration(
        p["infrastructureConfigurationArn"], caller=c.account_id, region=c.region
    ),
    "ListInfrastructureConfigurations": lambda p, c: infrastructure.list_infrastructure_configurations(
        account=c.account_id, region=c.region, **_list_key(p)
    ),
    "DeleteInfrastructureConfiguration": lambda p, c: infrastructure.delete_infrastructure_configuration(
        p["infrastructureConfigurationArn"], caller=c.account_id, region=c.region
    ),
    "CreateDistributionConfiguration": lambda p, c: distribution.create_distribution_configuration(
        _body(p), account=c.account_id, region=c.region
    ),
    "UpdateDistributionConfiguration": lambda p, c: distribution.update_distribution_configuration(
        _body(p), caller=c.account_id, region=c.region
    ),
    "GetDistributionConfiguration": lambda p, c: distribution.get_distribution_configuration(
        p["distributionConfigurationArn"], caller=c.account_id, region=c.region
    ),
    "ListDistributionConfigurations": lambda p, c: distribution.list_distribution_configurations(
        account=c.account_id, region=c.region, **_list_key(p)
    ),
    "DeleteDistributionConfiguration": lambda p, c: distribution.delete_distribution_configuration(
        p["distributionConfigurationArn"], caller=c.account_id, region=c.region
    ),
    # pipelines
    "CreateImagePipeline": lambda p, c: pipelines.create_image_pipeline(
        _body(p), account=c.account_id, region=c.region
    ),
    "UpdateImagePipeline": lambda p, c: pipelines.update_image_pipeline(_body(p), caller=c.account_id,
                                                                        region=c.region),
    "GetImagePipeline": lambda p, c: pipelines.get_image_pipeline(p["imagePipelineArn"], caller=c.account_id,
                                                                  region=c.region),
    "ListImagePipelines": lambda p, c: pipelines.list_image_pipelines(
        account=c.account_id, region=c.region, filters=p.get("filters")
    ),
    "DeleteImagePipeline": lambda p, c: pipelines.delete_image_pipeline(p["imagePipelineArn"], caller=c.account_id,
                                                                        region=c.region),
    "ListImagePipelineImages": lambda p, c: pipelines.list_image_pipeline_images(
        p["imagePipelineArn"], filters=p.get("filters"), caller=c.account_id
    ),
    # images: a build runs in the scheduler's worker pool; the answer comes at once (the image PENDING)
    "CreateImage": lambda p, c: build_queue.create_image(_body(p), account=c.account_id, region=c.region),
    "StartImagePipelineExecution": lambda p, c: build_queue.start_pipeline_execution(
        _body(p), account=c.account_id
    ),
    "GetImage": lambda p, c: _get_image(p, c),
    "ListImages": lambda p, c: image_versions.list_image_versions(
        account=c.account_id, region=c.region, owner=p.get("owner") or "Self", filters=p.get("filters"),
        by_name=bool(p.get("byName")), include_deprecated=bool(p.get("includeDeprecated")),
    ),
    "ListImageBuildVersions": lambda p, c: image_versions.list_image_build_versions(
        p["imageVersionArn"], filters=p.get("filters"), caller=c.account_id
    ),
    "ListImagePackages": lambda p, c: {"imagePackageList": list_image_packages(
        p["imageBuildVersionArn"], c.region, c.account_id)},
    "ListImageScanFindings": lambda p, c: {"findings": scan_findings.list_image_scan_findings(
        p.get("filters"), account=c.account_id)},
    "ListImageScanFindingAggregations": lambda p, c: scan_findings.list_image_scan_finding_aggregations(
        p.get("filter"), account=c.account_id),
    "CancelImageCreation": lambda p, c: image_versions.cancel_image_creation(
        p["imageBuildVersionArn"], p.get("clientToken"), caller=c.account_id
    ),
    # lifecycle policies
    "CreateLifecyclePolicy": lambda p, c: {
        "clientToken": p.get("clientToken"),
        "lifecyclePolicyArn": lifecycle.create_policy(_body(p), account=c.account_id, region=c.region),
    },
    "UpdateLifecyclePolicy": lambda p, c: {
        "lifecyclePolicyArn": lifecycle.update_policy(_body(p), caller=c.account_id, region=c.region)
    },
    "GetLifecyclePolicy": lambda p, c: {
        "lifecyclePolicy": lifecycle.get_policy(
            p["lifecyclePolicyArn"], caller=c.account_id, region=c.region
        ).model_dump(mode="json", exclude_none=True)
    },
    "DeleteLifecyclePolicy": lambda p, c: {
        "lifecyclePolicyArn": lifecycle.delete_policy(p["lifecyclePolicyArn"], caller=c.account_id, region=c.region)
    },
    "ListLifecyclePolicies": lambda p, c: {
        "lifecyclePolicySummaryList": lifecycle.list_policy_summaries(
            account=c.account_id, region=c.region, filters=p.get("filters")
        )
    },
    "ListLifecycleExecutions": lambda p, c: {
        "lifecycleExecutions": [
            execution.model_dump(mode="json", exclude_none=True)
            for execution in lifecycle.list_executions(p["resourceArn"], caller=c.account_id, region=c.region)
        ]
    },
    "GetLifecycleExecution": lambda p, c: {
        "lifecycleExecution": lifecycle.get_execution(
            p["lifecycleExecutionId"], caller=c.account_id, region=c.region
        ).model_dump(mode="json", exclude_none=True)
    },
    "ListLifecycleExecutionResources": lambda p, c: _execution_resources(p, c.account_id, c.region),
    "CancelLifecycleExecution": lambda p, c: {
        "lifecycleExecutionId": lifecycle.cancel_execution(p["lifecycleExecutionId"], caller=c.account_id,
                                                           region=c.region)
    },
    # workflows and what they ran
    "CreateWorkflow": lambda p, c: workflows.create_workflow(_body(p), account=c.account_id, region=c.region),
    "GetWorkflow": lambda p, c: workflows.get_workflow(p["workflowBuildVersionArn"], caller=c.account_id),
    "ListWorkflows": lambda p, c: workflows.list_workflows(
        owner=p.get("owner") or "Self", by_name=bool(p.get("byName")), account=c.account_id, region=c.region,
        **_list_key(p)
    ),
    "ListWorkflowBuildVersions": lambda p, c: workflows.list_workflow_build_versions(
        p["workflowVersionArn"], caller=c.account_id
    ),
    "DeleteWorkflow": lambda p, c: workflows.delete_workflow(p["workflowBuildVersionArn"], caller=c.account_id),
    "ListWorkflowExecutions": lambda p, c: workflow_executions.list_workflow_executions(
        p["imageBuildVersionArn"], caller=c.account_id
    ),
    "GetWorkflowExecution": lambda p, c: workflow_executions.get_workflow_execution(
        p["workflowExecutionId"], caller=c.account_id
    ),
    "ListWorkflowStepExecutions": lambda p, c: workflow_executions.list_workflow_step_executions(
        p["workflowExecutionId"], caller=c.account_id
    ),
    "GetWorkflowStepExecution": lambda p, c: workflow_executions.get_workflow_step_execution(
        p["stepExecutionId"], caller=c.account_id
    ),
    "ListWaitingWorkflowSteps": lambda p, c: workflow_executions.list_waiting_workflow_steps(
        caller=c.account_id, region=c.region
    ),
    "SendWorkflowStepAction": lambda p, c: workflow_executions.send_workflow_step_action(
        p["stepExecutionId"], p["imageBuildVersionArn"], p["action"], p.get("reason"), p.get("clientToken"),
        caller=c.account_id,
    ),
    # tags
    "TagResource": lambda p, c: tags.tag_resource(_body(p), caller=c.account_id, region=c.region),
    "UntagResource": lambda p, c: tags.untag_resource(_body(p), caller=c.account_id, region=c.region),
    "ListTagsForResource": lambda p, c: tags.list_tags_for_resource(p["resourceArn"], caller=c.account_id,
                                                                    region=c.region),
}


DIALECT = Dialect(
    missing="InvalidParameterException",
    invalid="InvalidParameterValueException",
    unknown_parameter="SerializationException",
    unknown_operation="UnknownOperationException",
    unsupported="InvalidRequestException",
    malformed="SerializationException",
    bad_token="InvalidPaginationTokenException",
    bad_limit="InvalidParameterValueException",
    too_large="RequestEntityTooLargeException",
    unknown_operation_status=404,
)

def in_callers_region(params: dict[str, Any], caller: Caller) -> None:
    """Every Image Builder ARN a request names (its ``…Arn`` members) is of the region the request was
    signed for, as a regional endpoint answers: another region's resource is not found, told from the
    ARN alone (so whether it exists there, or whose it is, is never said). Amazon-managed resources are
    in every region."""
    for member, value in params.items():
        if not (member.endswith("Arn") and isinstance(value, str)):
            continue
        parts = value.split(":", 5)
        if len(parts) < 6 or parts[0] != "arn" or parts[2] != "imagebuilder" or parts[4] == MANAGED_ACCOUNT:
            continue
        if parts[3] != caller.region:
            kind = parts[5].split("/", 1)[0].replace("-", " ")
            raise NotFound(f"{kind} {value} does not exist in region {caller.region}", location=member)


SERVICE = Service("imagebuilder", rest_json, DIALECT, Limits(low=1, high=1000, default=25), HANDLERS,
                  precheck=in_callers_region)
