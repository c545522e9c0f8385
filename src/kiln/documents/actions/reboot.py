"""Reboot: restart the target, then continue with the next step."""

from __future__ import annotations

import time

from pydantic import Field

from kiln.documents.actions.base import Action, ActionResult, Inputs, StepContext, register


class RebootInputs(Inputs):
    delaySeconds: int = Field(default=0, ge=0)


@register
class Reboot(Action):
    name = "Reboot"
    inputs = RebootInputs

    def execute(self, inputs: RebootInputs, context: StepContext) -> ActionResult:
        # The engine re-runs a step after the reboot it asked for; a Reboot step is then done.
        if context.extra.get("reboots", 0) > 0:
            return ActionResult()
        if inputs.delaySeconds:
            time.sleep(inputs.delaySeconds)
        return ActionResult(reboot_requested=True)
