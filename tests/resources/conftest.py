from __future__ import annotations

import textwrap

import pytest

BUILD_DOC = textwrap.dedent(
    """\
    name: sample
    schemaVersion: 1.0
    parameters:
      - Greeting:
          type: string
          default: hello
          description: What to say.
      - Target:
          type: string
          description: Required, no default.
    phases:
      - name: build
        steps:
          - name: Say
            action: ExecuteBash
            inputs:
              commands:
                - echo "{{ Greeting }}" > "{{ Target }}"
      - name: test
        steps:
          - name: Check
            action: ExecuteBash
            inputs:
              commands:
                - test -s "{{ Target }}"
    """
)

TEST_DOC = textwrap.dedent(
    """\
    name: only-test
    schemaVersion: 1.0
    phases:
      - name: test
        steps:
          - name: Check
            action: ExecuteBash
            inputs:
              commands:
                - "true"
    """
)

SIMPLE_DOC = textwrap.dedent(
    """\
    name: simple
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: Hello
            action: ExecuteBash
            inputs:
              commands:
                - echo hello
    """
)


@pytest.fixture
def build_doc() -> str:
    return BUILD_DOC


@pytest.fixture
def simple_doc() -> str:
    return SIMPLE_DOC


@pytest.fixture
def test_doc() -> str:
    return TEST_DOC
