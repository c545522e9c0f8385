"""``kiln:NoImplementation``: the one step of an AWS-managed component kiln has no implementation of.

Recipes may reference every component in AWS's public managed list; those kiln does not implement
(and every Windows one) are seeded with this step, so the recipe is accepted and the build fails at
that step with a plain reason instead of a confusing "no component matches".
"""

from __future__ import annotations

from pydantic import Field

from kiln.documents.actions.base import Action, ActionFailed, ActionResult, Inputs, StepContext, register


class UnavailableInputs(Inputs):
    component: str = Field(min_length=1)


@register
class NoImplementation(Action):
    name = "kiln:NoImplementation"
    inputs = UnavailableInputs

    def execute(self, inputs: UnavailableInputs, context: StepContext) -> ActionResult:
        info = context.executor.os_info()
        running = " ".join(part for part in (info.id, info.version_id) if part) or info.platform.lower()
        raise ActionFailed(f"managed component {inputs.component} has no kiln implementation for {running}")
