"""ExecuteDocument: run another component document (nesting at most 3 levels, no cycles)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from kiln.documents.actions.base import Action, ActionFailed, ActionResult, Inputs, StepContext, register


class DocumentParameter(Inputs):
    name: str
    value: str


class ExecuteDocumentInputs(Inputs):
    document: str = Field(min_length=1)
    document_s3_bucket_owner: str | None = Field(default=None, alias="document-s3-bucket-owner")
    phases: str | None = None
    parameters: list[DocumentParameter] = Field(default_factory=list)


@register
class ExecuteDocument(Action):
    name = "ExecuteDocument"
    inputs = ExecuteDocumentInputs
    outputs: ClassVar[tuple[str, ...]] = ("outputs",)

    def execute(self, inputs: ExecuteDocumentInputs, context: StepContext) -> ActionResult:
        if context.run_document is None:
            raise ActionFailed("ExecuteDocument is not available here")
        phases = [name for name in (inputs.phases or "").split(",") if name] or None
        parameters = {item.name: item.value for item in inputs.parameters}
        result = context.run_document(inputs.document, parameters, phases)
        summary = dict(result["summary"])
        context.extra["detailedOutput"] = [result["detail"]]
        if summary.get("status") == "failed":
            raise ActionFailed(f"document {inputs.document} failed: {summary.get('failureMessage') or ''}")
        return ActionResult(outputs={"outputs": [summary]})
