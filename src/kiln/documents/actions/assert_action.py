"""Assert: fail the step unless one comparison or logical expression holds.

AWS lists Assert among AWSTOE's modules and documents that the comparison operators work with it;
its inputs are one operator expression, as in an ``if``.
"""

from __future__ import annotations

from typing import Any

from pydantic import RootModel, model_validator

from kiln.documents import conditions
from kiln.documents.actions.base import Action, ActionFailed, ActionResult, StepContext, register
from kiln.documents.expressions import has_expression


class AssertInputs(RootModel[dict[str, Any]]):
    @model_validator(mode="after")
    def _one_expression(self) -> AssertInputs:
        problems = conditions.check(self.root, step_level=False)
        if problems:
            raise ValueError("; ".join(message for _, message, _ in problems))
        return self


@register
class Assert(Action):
    name = "Assert"
    inputs = AssertInputs

    def execute(self, inputs: AssertInputs, context: StepContext) -> ActionResult:
        if conditions.evaluate(inputs.root, lambda value: value, context.executor):
            return ActionResult(outputs={"result": True})
        shown = {key: value for key, value in inputs.root.items() if not has_expression(value)}
        raise ActionFailed(f"assertion failed: {shown}")
