"""ExecuteBash and ExecuteBinary: run a script or a program on the target, capture ``stdout``.

Exit code 194 asks for a reboot and a re-run of the same step (AWSTOE's protocol on Linux).
"""

from __future__ import annotations

import os
import uuid
from typing import ClassVar

from pydantic import Field

from kiln.documents.actions.base import POSIX, Action, ActionFailed, ActionResult, Inputs, StepContext, register
from kiln.documents.executor import ProcessResult

REBOOT_EXIT_CODE = 194
SCRIPT_DIR = "/tmp"


class BashInputs(Inputs):
    commands: list[str] = Field(min_length=1)


class BinaryInputs(Inputs):
    path: str = Field(min_length=1)
    arguments: list[str] = Field(default_factory=list)


def finish(result: ProcessResult, context: StepContext) -> ActionResult:
    """Turn a process result into the step's outcome (shared by both actions)."""
    if result.timed_out:
        raise ActionFailed(f"step timed out after {context.timeout:g} seconds; its processes were killed")
    if result.exit_code == REBOOT_EXIT_CODE:
        return ActionResult(outputs={"stdout": result.stdout.rstrip("\n")}, reboot_requested=True)
    if result.exit_code != 0:
        detail = result.stderr.strip().splitlines()[-1:] or [""]
        raise ActionFailed(f"exit status {result.exit_code}" + (f": {detail[0]}" if detail[0] else ""))
    return ActionResult(outputs={"stdout": result.stdout.rstrip("\n")})


@register
class ExecuteBash(Action):
    name = "ExecuteBash"
    platforms = POSIX
    inputs = BashInputs
    outputs: ClassVar[tuple[str, ...]] = ("stdout",)

    def execute(self, inputs: BashInputs, context: StepContext) -> ActionResult:
        # AWSTOE writes the commands into one script and runs it with bash; the script stops at the
        # first failing command (errexit), and its exit code is the step's.
        target = f"{SCRIPT_DIR}/kiln-toe-{uuid.uuid4().hex}.sh"
        script = context.executor.host_path(target)
        body = ("set -e\n" + "\n".join(inputs.commands) + "\n").encode()
        try:
            descriptor = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError:
            script.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(body)
        try:
            result = context.executor.run(
                ["bash", target], timeout=context.timeout, on_stdout=context.console,
                on_stderr=context.console, cwd=context.extra.get("cwd"),
            )
        finally:
            script.unlink(missing_ok=True)
        return finish(result, context)


@register
class ExecuteBinary(Action):
    name = "ExecuteBinary"
    inputs = BinaryInputs
    outputs: ClassVar[tuple[str, ...]] = ("stdout",)

    def execute(self, inputs: BinaryInputs, context: StepContext) -> ActionResult:
        try:
            result = context.executor.run(
                [inputs.path, *inputs.arguments], timeout=context.timeout, on_stdout=context.console,
                on_stderr=context.console, cwd=context.extra.get("cwd"),
            )
        except OSError as error:
            raise ActionFailed(f"cannot run {inputs.path}: {error.strerror or error}") from None
        return finish(result, context)
