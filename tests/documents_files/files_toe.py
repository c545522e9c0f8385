"""The document runner shared by the file-action tests (imported by conftest and the tests)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from kiln.documents.report import Execution, StepRecord

HEADER = """\
name: files-test
schemaVersion: 1.0
parameters:
  - Work:
      type: string
      description: The test's work folder.
phases:
  - name: build
    steps:
"""


@dataclass
class Run:
    execution: Execution
    steps: dict[str, StepRecord]
    console: list[str]

    def output(self, step: str, key: str) -> object:
        return self.steps[step].outputs[0][key]

    def failure(self, step: str) -> str:
        record = self.steps[step]
        assert record.status == "failed", f"{step} did not fail"
        return record.failure_message


def document(steps: str) -> str:
    return HEADER + textwrap.indent(textwrap.dedent(steps).strip("\n"), " " * 6) + "\n"
