"""Scalars where AWSTOE documents a string: read as their text, as AWSTOE reads them.

AWS's own S3Download example writes ``expectedBucketOwner: 123456789022``; a bare number or boolean
for a documented string input is accepted, while a list or mapping there is still refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiln.documents.engine import Engine
from kiln.documents.host import HostExecutor
from kiln.documents.validate import load_document

AWS_S3_EXAMPLE = """
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: DownloadMyFile
        action: S3Download
        inputs:
          - source: s3://mybucket/path/to/package.zip
            destination: /tmp/package.zip
            expectedBucketOwner: 123456789022
            overwrite: false
      - name: Upload
        action: S3Upload
        inputs:
          - source: /tmp/package.zip
            destination: s3://mybucket/path/to/package.zip
            expectedBucketOwner: 123456789022
            recurse: false
"""


def test_numbers_in_documented_strings_are_accepted(issues: Callable[..., Any]) -> None:
    assert issues(AWS_S3_EXAMPLE) == []
    assert issues(AWS_S3_EXAMPLE, "Windows") == []


def test_lists_and_mappings_where_a_string_is_documented_are_refused(issues: Callable[..., Any]) -> None:
    text = """
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: Download
            action: S3Download
            inputs:
              - source: s3://mybucket/a.zip
                destination: [/tmp/a.zip]
                expectedBucketOwner: {id: 123456789022}
          - name: Web
            action: WebDownload
            inputs:
              - source: https://example.com/a.zip
                destination: /tmp/a.zip
                checksum: [abc]
                algorithm: SHA256
    """
    assert issues(text) == [
        "9:26: S3Download: input '[0].destination': Input should be a valid string",
        "10:34: S3Download: input '[0].expectedBucketOwner': Input should be a valid string",
        "16:23: WebDownload: input '[0].checksum': Input should be a valid string",
    ]


def test_number_and_boolean_contents_are_written_as_their_text(write_doc: Callable[..., Path],
                                                               tmp_path: Path) -> None:
    doc = load_document(write_doc(f"""
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: Number
            action: CreateFile
            inputs:
              - path: {tmp_path}/number.txt
                content: 123456789022
          - name: Flag
            action: CreateFile
            inputs:
              - path: {tmp_path}/flag.txt
                content: true
          - name: Ratio
            action: CreateFile
            inputs:
              - path: {tmp_path}/ratio.txt
                content: 1.5
                encoding: utf8
    """))
    execution = Engine(HostExecutor()).run([doc])
    assert execution.status == "success", execution.failure_message
    assert (tmp_path / "number.txt").read_text() == "123456789022"
    assert (tmp_path / "flag.txt").read_text() == "true"
    assert (tmp_path / "ratio.txt").read_text() == "1.5"


def test_number_and_boolean_inputs_keep_their_types(issues: Callable[..., Any]) -> None:
    text = """
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: Create
            action: CreateFile
            inputs:
              - path: /tmp/x
                overwrite: maybe
          - name: Wait
            action: Reboot
            inputs:
              delaySeconds: soon
    """
    assert issues(text) == [
        "9:24: CreateFile: input '[0].overwrite': Input should be a valid boolean, unable to interpret input",
        "13:25: Reboot: input 'delaySeconds': Input should be a valid integer, unable to parse string as an "
        "integer",
    ]


def test_numbers_in_string_lists_are_text_booleans_are_not(issues: Callable[..., Any],
                                                           write_doc: Callable[..., Path]) -> None:
    text = """
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: Print
            action: ExecuteBinary
            inputs:
              path: /usr/bin/printf
              arguments: ['%s-%s', 8080, 1.5]
          - name: Slip
            action: ExecuteBinary
            inputs:
              path: /bin/echo
              arguments: [on]
    """
    assert issues(text) == ["14:23: ExecuteBinary: input 'arguments[0]': Input should be a valid string"]
    doc = load_document(write_doc(text.replace("arguments: [on]", "arguments: [done]")))
    execution = Engine(HostExecutor()).run([doc])
    assert execution.status == "success", execution.failure_message
    assert execution.documents[0].phases[0].steps[0].outputs == [{"stdout": "8080-1.5"}]


def test_execute_document_parameters_and_bucket_owner_take_numbers(issues: Callable[..., Any]) -> None:
    text = """
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: Nested
            action: ExecuteDocument
            timeoutSeconds: -1
            inputs:
              document: s3://my-bucket/child.yaml
              document-s3-bucket-owner: 123456789022
              parameters:
                - name: Count
                  value: 3
                - name: Enabled
                  value: true
                - name: Bad
                  value: [1]
    """
    assert issues(text) == ["17:22: ExecuteDocument: input 'parameters[2].value': Input should be a valid string"]
