from __future__ import annotations

from pathlib import Path

import pytest

from kiln.documents.model import DocumentInvalid
from kiln.documents.validate import load_document, parse, validate_files

DATA = Path(__file__).parent / "data"


def messages(text: str, platform: str = "Linux") -> list[str]:
    return [str(issue) for issue in parse(text, "d.yaml", platform=platform)[1]]


def test_every_error_kind_with_exact_positions() -> None:
    path = str(DATA / "every-error.yaml")
    found = [str(issue).removeprefix(path + ":") for issue in validate_files([path])]
    assert found == [
        "3:1: unknown key 'colour'",
        "13:21: ExecuteBash: input 'commands': Input should be a valid list",
        "14:15: duplicate step name 'One' in phase 'build'",
        "15:17: unknown action 'NoSuchAction'",
        "19:11: ExecuteBash: missing required input 'commands'",
        "19:11: ExecuteBash: unknown input 'command'",
        "21:17: action 'ExecutePowerShell' is Windows-only; it cannot run on linux",
        "28:15: reference to undefined parameter or constant 'Missing'",
        "28:15: reference to undefined step 'build.Nope'",
        "28:15: action ExecuteBash has no output 'nothing'",
        "29:15: step 'validate.Later' does not run before this step",
        "33:45: loop from 0 to 5 by -1 never ends",
        "34:20: onFailure must be Abort, Continue or Ignore",
        "35:22: maxAttempts must be an integer of at least 1",
        "36:25: timeoutSeconds must be a positive integer or -1",
        "46:25: Reboot: input 'delaySeconds': Input should be a valid integer, unable to parse string as an "
        "integer",
        "50:11: expected exactly one operator, found stringEquals, numberEquals",
        "52:17: 'then' must be one of Execute, Skip, Abort",
        "60:22: ExecuteBash: input 'commands[0]': Input should be a valid string",
    ]


def test_expression_values_are_type_checked_only_at_run_time() -> None:
    # "{{ Delay }}" cannot be typed statically; "soon" can (and is wrong)
    text = """schemaVersion: 1.0
parameters:
  - Delay:
      type: integer
      default: 0
phases:
  - name: build
    steps:
      - name: A
        action: Reboot
        inputs:
          delaySeconds: '{{ Delay }}'
"""
    assert messages(text) == []


def test_top_level_requirements() -> None:
    assert messages("name: x\n") == [
        "d.yaml:1:1: missing required key 'schemaVersion'",
        "d.yaml:1:1: missing required key 'phases'",
    ]
    assert messages("schemaVersion: 2.0\nphases: []\n") == [
        "d.yaml:1:16: unsupported schemaVersion '2.0' (only 1.0)",
        "d.yaml:2:9: 'phases' must be a non-empty list",
    ]


def test_parameters_and_constants() -> None:
    text = """schemaVersion: 1.0
parameters:
  - ab:
      type: string
  - Count:
      type: integer
      default: many
  - Flag:
      type: float
constants:
  - Count:
      type: string
      value: x
phases:
  - name: build
    steps:
      - name: A
        action: ExecuteBash
        inputs:
          commands: [echo]
"""
    assert messages(text) == [
        "d.yaml:3:5: name 'ab' must be 3-128 letters, digits, '-' or '_'",
        "d.yaml:7:16: default of 'Count': 'many' is not an integer",
        "d.yaml:9:13: parameter type must be string, integer or boolean, not 'float'",
        "d.yaml:11:3: 'Count' is both a parameter and a constant",
    ]


def test_duplicate_phase_and_unknown_step_key() -> None:
    text = """schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: A
        action: ExecuteBash
        retries: 3
        inputs:
          commands: [echo]
  - name: build
    steps:
      - name: B
        action: ExecuteBash
        inputs:
          commands: [echo]
"""
    assert messages(text) == [
        "d.yaml:7:9: unknown step key 'retries'",
        "d.yaml:10:11: duplicate phase name 'build'",
    ]


def test_bad_loops() -> None:
    text = """schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: A
        action: ExecuteBash
        loop:
          for: {start: 0, end: 3, updateBy: 0}
          forEach: [a]
        inputs:
          commands: [echo]
      - name: B
        action: ExecuteBash
        loop:
          name: outer
          forEach:
            list: a;b
            delimiter: '|'
        inputs:
          commands: ['{{ inner.value }}']
"""
    assert messages(text) == [
        "d.yaml:8:11: loop needs exactly one of 'for' or 'forEach'",
        "d.yaml:18:24: 'delimiter' must be one of . , ; : newline tab space - _",
        "d.yaml:20:22: reference to undefined loop 'inner'",
    ]
    text2 = text.replace("delimiter: '|'", "delimiter: ';'").replace(
        "loop:\n          for: {start: 0, end: 3, updateBy: 0}\n          forEach: [a]",
        "loop:\n          for: {start: 0, end: 3, updateBy: 0}",
    )
    assert messages(text2) == [
        "d.yaml:8:45: 'updateBy' must not be 0",
        "d.yaml:19:22: reference to undefined loop 'inner'",
    ]


def test_condition_nesting_limit() -> None:
    deep = "not: {not: {not: {not: {not: {stringIsEmpty: ''}}}}}"
    text = f"""schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: A
        action: ExecuteBash
        if: {{{deep}}}
        inputs:
          commands: [echo]
"""
    assert messages(text) == ["d.yaml:7:37: conditions nest deeper than 4 levels"]


def test_list_shaped_inputs_map_errors_to_items() -> None:
    # SetRegistry takes a list (a RootModel); checked in full when validating for Windows
    text = """schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Reg
        action: SetRegistry
        inputs:
          - path: HKLM:/x
            name: a
            value: 1
            type: DWORD
          - path: HKLM:/y
            typo: 1
            type: NOPE
"""
    assert messages(text, platform="windows") == [
        "d.yaml:12:13: SetRegistry: missing required input '[1].name'",
        "d.yaml:12:13: SetRegistry: missing required input '[1].value'",
        "d.yaml:13:13: SetRegistry: unknown input '[1].typo'",
        "d.yaml:14:19: SetRegistry: input '[1].type': Input should be 'BINARY', 'DWORD', 'QWORD', 'SZ', "
        "'EXPAND_SZ' or 'MULTI_SZ'",
    ]
    assert messages(text) == ["d.yaml:6:17: action 'SetRegistry' is Windows-only; it cannot run on linux"]


def test_execute_document_fixed_settings() -> None:
    text = """schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Nest
        action: ExecuteDocument
        timeoutSeconds: 60
        inputs:
          document: other.yaml
"""
    assert messages(text) == ["d.yaml:7:25: ExecuteDocument requires timeoutSeconds -1"]


def test_load_document_raises_with_every_issue(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("schemaVersion: 1.0\nbogus: 1\nphases: 3\n")
    with pytest.raises(DocumentInvalid) as caught:
        load_document(path)
    assert [(i.line, i.column) for i in caught.value.issues] == [(2, 1), (3, 9)]
    assert validate_files([str(tmp_path / "missing.yaml")])[0].message.startswith("cannot read document")


def test_a_known_phase_is_required() -> None:
    text = """schemaVersion: 1.0
phases:
  - name: prepare
    steps:
      - name: A
        action: ExecuteBash
        inputs: {commands: [echo]}
"""
    assert messages(text) == ["d.yaml:3:3: a document needs at least one of the phases build, validate, test"]
