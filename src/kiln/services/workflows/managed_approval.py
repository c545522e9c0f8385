"""The approval switch: ``kiln pipeline create|update --approval``, ``kiln image create --approval`` and
``kiln:approval: true`` on a ``kiln apply`` ImagePipeline document all mean one thing — the image's
``workflows`` list with kiln's managed ``test-and-approve-image`` (test-image's steps, then the
``WaitForAction`` step ``ApproveImage``) in place of the managed ``test-image``.

The switch only writes the ``workflows`` list, Image Builder's own field: a pipeline created over the
wire with the managed workflow's ARN is the same pipeline. What the list becomes:

* no workflows (the managed build, test and distribution): build-image, test-and-approve-image,
  distribute-image;
* a list naming the managed test-image: that entry becomes test-and-approve-image (its onFailure and
  parallelGroup kept);
* a list already naming test-and-approve-image: unchanged;
* any other list (custom TEST workflows only, or no TEST workflow at all): refused, since kiln would have
  to guess where the approval goes — add the workflow's ARN to the list yourself.

Container recipes are refused: the approval marks AMIs.
"""

from __future__ import annotations

from typing import Any

from kiln.errors import InvalidInput
from kiln.home import DEFAULT_REGION
from kiln.model.arn import MANAGED_ACCOUNT, parse_arn
from kiln.services.workflows.managed import APPROVAL, MANAGED, managed_arn, managed_workflow_arn

APPROVAL_STEP = "ApproveImage"  # the WaitForAction step of test-and-approve-image


def approval_arn(region: str = DEFAULT_REGION) -> str:
    return managed_workflow_arn(*APPROVAL, region)


def _managed_named(arn: str, name: str) -> bool:
    try:
        parsed = parse_arn(arn, allow_short=True)
    except InvalidInput:
        return False
    return parsed.account == MANAGED_ACCOUNT and parsed.resource_type == "workflow/test" and parsed.name == name


def is_approval_workflow(arn: str) -> bool:
    """Whether ``arn`` names kiln's managed approval workflow (any region, version or build form)."""
    return _managed_named(arn, APPROVAL[1])


def with_approval(workflows: list[dict[str, Any]] | None, region: str = DEFAULT_REGION, *,
                  where: str = "workflows", container: bool = False) -> list[dict[str, Any]]:
    """``workflows`` (CreateImage's / a pipeline's, as dicts) with the approval step switched on."""
    if container:
        raise InvalidInput("approval is for AMI images: the approval watermark marks AMIs, and a container recipe "
                           "makes none", location=where)
    entries = [dict(entry) for entry in workflows or []]
    if not entries:
        return [{"workflowArn": managed_arn("BUILD", region)}, {"workflowArn": approval_arn(region)},
                {"workflowArn": managed_arn("DISTRIBUTION", region)}]
    if any(is_approval_workflow(str(entry.get("workflowArn", ""))) for entry in entries):
        return entries
    test_image = dict(MANAGED)["TEST"]
    switched = [{**entry, "workflowArn": approval_arn(region)}
                if _managed_named(str(entry.get("workflowArn", "")), test_image) else entry for entry in entries]
    if switched == entries:
        raise InvalidInput(
            f"approval takes the place of the managed test-image workflow, and {where} names none",
            location=where, hint=f"add {approval_arn(region)} to the workflows yourself, where the approval belongs")
    return switched
