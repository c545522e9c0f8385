"""Document keys real published components use: parameters' ``allowedValues``, a top-level
``version``, and ``force`` on file actions (see the README's Compatibility section)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kiln.documents.host import HostExecutor
from kiln.documents.run import document_from_text, run_documents
from kiln.errors import InvalidInput

VENDOR_DOC = """
name: agent-install
description: Installs the vendor agent for the chosen environment.
schemaVersion: 1.0
version: 2.4.1
parameters:
  - Environment:
      type: string
      default: staging
      description: Where the agent reports.
      allowedValues: [staging, production]
  - Workers:
      type: integer
      default: 2
      allowedValues: [1, 2, 4]
  - Verbose:
      type: boolean
      default: false
      allowedValues: [false]
phases:
  - name: build
    steps:
      - name: Configure
        action: ExecuteBash
        inputs:
          commands:
            - echo "env={{ Environment }} workers={{ Workers }} verbose={{ Verbose }}"
"""


def test_allowed_values_and_version_are_accepted(issues: Callable[..., Any]) -> None:
    assert issues(VENDOR_DOC) == []


def test_a_default_outside_allowed_values_is_refused(issues: Callable[..., Any]) -> None:
    text = """
    schemaVersion: 1.0
    version: {major: 1}
    parameters:
      - Environment:
          type: string
          default: qa
          allowedValues: [staging, production]
      - Workers:
          type: integer
          allowedValues: [1, two]
      - Empty:
          type: string
          allowedValues: []
    phases:
      - name: build
        steps:
          - name: Configure
            action: ExecuteBash
            inputs: {commands: [echo]}
    """
    assert issues(text) == [
        "2:10: 'version' must be a string or a number",
        "6:16: default of 'Environment': 'qa' is not one of the allowed values (staging, production)",
        "10:26: allowed value 'two' is not an integer",
        "13:22: 'allowedValues' must be a non-empty list",
    ]


def test_given_values_are_checked_against_allowed_values(tmp_path: Path) -> None:
    document = document_from_text(VENDOR_DOC.lstrip("\n"), "agent.yaml")
    execution, _ = run_documents([document], executor=HostExecutor(), log_directory=tmp_path,
                                 execution_id="ok", parameters={"Environment": "production", "Workers": "4"})
    assert execution.status == "success"
    with pytest.raises(InvalidInput) as caught:
        run_documents([document], executor=HostExecutor(), log_directory=tmp_path, execution_id="bad",
                      parameters={"Workers": "3"})
    assert caught.value.message == "parameter Workers: '3' is not one of the allowed values (1, 2, 4)"
    assert not (tmp_path / "TOE_bad").exists()


def test_cli_run_refuses_a_value_not_allowed(kiln: Any, write_doc: Callable[..., Path], tmp_path: Path) -> None:
    path = write_doc(VENDOR_DOC, "agent.yaml")
    result = kiln("component", "run", "--documents", str(path), "--parameters", "Environment=qa",
                  "--log-directory", str(tmp_path / "logs"))
    assert result.exit_code != 0
    assert "parameter Environment: 'qa' is not one of the allowed values (staging, production)" in result.stderr
    assert "Traceback" not in result.stderr
    result = kiln("component", "run", "--documents", str(path), "--parameters", "Environment=production",
                  "--log-directory", str(tmp_path / "logs"))
    assert result.exit_code == 0, result.stderr


def test_force_is_taken_where_awstoe_documents_it(issues: Callable[..., Any]) -> None:
    text = """
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: Link
            action: CreateSymlink
            inputs: [{path: /tmp/l, target: /tmp, force: true}]
          - name: Remove
            action: DeleteFolder
            inputs: [{path: /tmp/gone, force: true}]
          - name: Write
            action: CreateFile
            inputs: [{path: /tmp/f, content: x, force: true}]
          - name: Copy
            action: CopyFile
            inputs: [{source: /tmp/f, destination: /tmp/g, force: true}]
    """
    hint = "(this action takes 'overwrite'; 'force' belongs to CreateSymlink and DeleteFolder)"
    assert issues(text) == [
        f"13:45: CreateFile: unknown input '[0].force' {hint}",
        f"16:56: CopyFile: unknown input '[0].force' {hint}",
    ]


def test_component_parameters_report_defaults_as_written() -> None:
    from kiln.services.components.resource import create_component, get_component

    arn = create_component({"name": "agent", "semanticVersion": "1.0.0", "platform": "Linux",
                            "data": VENDOR_DOC.lstrip("\n")})["componentBuildVersionArn"]
    parameters = get_component(arn)["component"]["parameters"]
    assert parameters == [
        {"name": "Environment", "type": "String", "defaultValue": ["staging"],
         "description": "Where the agent reports."},
        {"name": "Workers", "type": "Integer", "defaultValue": ["2"]},
        {"name": "Verbose", "type": "Boolean", "defaultValue": ["false"]},
    ]
