"""The Amazon-managed workflows kiln ships: ``build-image``, ``test-image`` and ``distribute-image``
for AMIs, ``build-container``, ``test-container`` and ``distribute-container`` for container recipes,
and ``test-and-approve-image`` (test-image, then a ``WaitForAction`` approval step; what the approval
switch chooses), documents in ``managed_documents/`` run by the build engine like any workflow.

They are kiln's build, test and distribution stages written as workflow documents, owned by
``Amazon`` under the account ``aws``: ``arn:aws:imagebuilder:<region>:aws:workflow/build/build-image/1.0.0/1``
(managed resources are found from every region). Seeding is idempotent; a release that changes a
document bumps its version here (versions are immutable).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kiln.home import DEFAULT_REGION
from kiln.model.arn import MANAGED_ACCOUNT

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DOCUMENTS = Path(__file__).resolve().parent / "managed_documents"
VERSION = "1.0.0"
MANAGED: tuple[tuple[str, str], ...] = (
    ("BUILD", "build-image"),
    ("TEST", "test-image"),
    ("DISTRIBUTION", "distribute-image"),
)
# Not run by default: the approval switch (kiln.services.workflows.managed_approval) puts it in place of test-image.
APPROVAL: tuple[str, str] = ("TEST", "test-and-approve-image")
CONTAINER_MANAGED: tuple[tuple[str, str], ...] = (
    ("BUILD", "build-container"),
    ("TEST", "test-container"),
    ("DISTRIBUTION", "distribute-container"),
)


def managed_of(container: bool = False) -> tuple[tuple[str, str], ...]:
    """The managed workflows an image runs by default: the container ones for a container recipe."""
    return CONTAINER_MANAGED if container else MANAGED


def managed_arn(workflow_type: str, region: str = DEFAULT_REGION, container: bool = False) -> str:
    """The managed workflow of a stage, as a build version ARN."""
    return managed_workflow_arn(workflow_type, dict(managed_of(container))[workflow_type], region)


def managed_workflow_arn(workflow_type: str, name: str, region: str = DEFAULT_REGION) -> str:
    """The build version ARN of the managed workflow ``name`` of ``workflow_type``."""
    return f"arn:aws:imagebuilder:{region}:{MANAGED_ACCOUNT}:workflow/{workflow_type.lower()}/{name}/{VERSION}/1"


def ensure_managed_workflows(db: Session) -> None:
    """Seed the managed workflows the database lacks."""
    from kiln.model.workflow import CreateWorkflowRequest
    from kiln.services.workflows.resource import _rows, put_workflow

    for workflow_type, name in (*MANAGED, *CONTAINER_MANAGED, APPROVAL):
        if any(row.version == VERSION for row in _rows(db, MANAGED_ACCOUNT, workflow_type, name)):
            continue
        text = (DOCUMENTS / f"{name}.yaml").read_text()
        description = next(line.split(":", 1)[1].strip() for line in text.splitlines()
                           if line.startswith("description:"))
        request = CreateWorkflowRequest(name=name, semanticVersion=VERSION, type=workflow_type, data=text,
                                        description=description[:1024])
        put_workflow(db, request, account=MANAGED_ACCOUNT, region=DEFAULT_REGION, owner="Amazon")
