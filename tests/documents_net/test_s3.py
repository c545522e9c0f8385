from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.documents_net.conftest import RunDoc, steps

from kiln.documents.validate import DocumentInvalid

OWNER = "123456789012"  # moto's default account


def keys(s3: Any, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def one_step(action: str, items: str) -> str:
    return f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Go
                action: {action}
                inputs:
{items}
    """


def tree(root: Path) -> Path:
    (root / "sub/deeper").mkdir(parents=True)
    (root / "a.txt").write_text("A")
    (root / "b.log").write_text("B")
    (root / "sub/c.txt").write_text("C")
    (root / "sub/deeper/d.txt").write_text("D")
    return root


def test_upload_files_wildcards_and_folders(run_doc: RunDoc, s3: Any, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="uploads")
    src = tree(tmp_path / "src")
    execution = run_doc(f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Up
                action: S3Upload
                inputs:
                  - source: {src}/a.txt
                    destination: s3://uploads/renamed.txt
                    expectedBucketOwner: '{OWNER}'
                  - source: {src}/a.txt
                    destination: s3://uploads/into/
                  - source: {src}/*.txt
                    destination: s3://uploads/star/
                  - source: {src}/*
                    destination: s3://uploads/deep/
                    recurse: 'true'
                  - source: {src}
                    destination: s3://uploads/flat/
                  - source: {src}/
                    destination: s3://uploads/tree
                    recurse: true
    """)
    assert execution.status == "success", [s.failure_message for s in execution.steps()]
    assert steps(execution)["Up"].outputs == []
    assert keys(s3, "uploads") == {
        "renamed.txt": b"A",
        "into/a.txt": b"A",
        "star/a.txt": b"A",
        "deep/a.txt": b"A", "deep/b.log": b"B", "deep/sub/c.txt": b"C", "deep/sub/deeper/d.txt": b"D",
        "flat/a.txt": b"A", "flat/b.log": b"B",
        "tree/a.txt": b"A", "tree/b.log": b"B", "tree/sub/c.txt": b"C", "tree/sub/deeper/d.txt": b"D",
    }


@pytest.mark.parametrize(("item", "message"), [
    ("{source: '{src}/nothing-here', destination: 's3://uploads/x'}", "does not exist"),
    ("{source: '{src}/*.pdf', destination: 's3://uploads/x/'}", "no files match"),
    ("{source: '{src}/missing/*', destination: 's3://uploads/x/'}", "does not exist"),
    ("{source: '{src}/a.txt', destination: 's3://no-such-bucket/x'}", "NoSuchBucket"),
])
def test_upload_failures(run_doc: RunDoc, s3: Any, tmp_path: Path, item: str, message: str) -> None:
    s3.create_bucket(Bucket="uploads")
    src = tree(tmp_path / "src")
    execution = run_doc(one_step("S3Upload", "                  - " + item.replace("{src}", str(src))))
    assert execution.status == "failed"
    assert message in steps(execution)["Go"].failure_message
    assert keys(s3, "uploads") == {}


def test_download_objects_and_prefixes(run_doc: RunDoc, s3: Any, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="down")
    for key, body in {"one.bin": b"\x00one", "p/x.txt": b"X", "p/q/y.txt": b"Y", "p/empty/": b"",
                      "other/z.txt": b"Z"}.items():
        s3.put_object(Bucket="down", Key=key, Body=body)
    dest = tmp_path / "dest"
    (dest / "mirror").mkdir(parents=True)
    (dest / "existing.bin").write_bytes(b"old")
    execution = run_doc(f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Down
                action: S3Download
                inputs:
                  - source: s3://down/one.bin
                    destination: {dest}/file.bin
                    expectedBucketOwner: '{OWNER}'
                  - source: s3://down/one.bin
                    destination: {dest}/
                  - source: s3://down/one.bin
                    destination: {dest}/existing.bin
                  - source: s3://down/p/*
                    destination: {dest}/mirror
    """)
    assert execution.status == "success", [s.failure_message for s in execution.steps()]
    assert (dest / "file.bin").read_bytes() == b"\x00one"
    assert (dest / "one.bin").read_bytes() == b"\x00one"
    assert (dest / "existing.bin").read_bytes() == b"\x00one"  # overwrite defaults to true
    assert (dest / "mirror/x.txt").read_bytes() == b"X"
    assert (dest / "mirror/q/y.txt").read_bytes() == b"Y"
    assert (dest / "mirror/empty").is_dir()
    assert not (dest / "mirror/z.txt").exists()
    assert sorted(p.name for p in dest.iterdir()) == ["existing.bin", "file.bin", "mirror", "one.bin"]


@pytest.mark.parametrize(("item", "message"), [
    ("{source: 's3://down/one.bin', destination: '{dest}/existing.bin', overwrite: false}",
     'already exists and "overwrite" is set to false'),
    ("{source: 's3://down/one.bin', destination: '{dest}/no/such/folder/f'}", "does not exist"),
    ("{source: 's3://down/missing.bin', destination: '{dest}/f'}", "no such object"),
    ("{source: 's3://no-such-bucket/one.bin', destination: '{dest}/f'}", "NoSuchBucket"),
    ("{source: 's3://down/nothing/*', destination: '{dest}'}", "no objects under this prefix"),
    ("{source: 's3://down/p/*', destination: '{dest}/absent'}", "does not exist"),
])
def test_download_failures(run_doc: RunDoc, s3: Any, tmp_path: Path, item: str, message: str) -> None:
    s3.create_bucket(Bucket="down")
    s3.put_object(Bucket="down", Key="one.bin", Body=b"new")
    s3.put_object(Bucket="down", Key="p/x.txt", Body=b"X")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "existing.bin").write_bytes(b"old")
    execution = run_doc(one_step("S3Download", "                  - " + item.replace("{dest}", str(dest))))
    assert execution.status == "failed"
    assert message in steps(execution)["Go"].failure_message
    assert (dest / "existing.bin").read_bytes() == b"old"
    assert sorted(p.name for p in dest.iterdir()) == ["existing.bin"]  # nothing else written


def test_round_trip_with_chained_paths(run_doc: RunDoc, s3: Any, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="trip")
    execution = run_doc(f"""
        schemaVersion: 1.0
        parameters:
          - Bucket: {{type: string, default: trip}}
        phases:
          - name: build
            steps:
              - name: Make
                action: ExecuteBash
                inputs:
                  commands: ['mkdir -p {tmp_path}/out && printf built > {tmp_path}/artifact && echo {tmp_path}']
              - name: Up
                action: S3Upload
                inputs:
                  - source: '{{{{ build.Make.outputs.stdout }}}}/artifact'
                    destination: 's3://{{{{ Bucket }}}}/artifacts/'
          - name: test
            steps:
              - name: Down
                action: S3Download
                inputs:
                  - source: 's3://{{{{ Bucket }}}}/artifacts/*'
                    destination: '{{{{ build.Make.outputs.stdout }}}}/out'
    """)
    assert execution.status == "success", [s.failure_message for s in execution.steps()]
    assert keys(s3, "trip") == {"artifacts/artifact": b"built"}
    assert (tmp_path / "out/artifact").read_text() == "built"


@pytest.mark.parametrize(("action", "item", "message"), [
    ("S3Download", "{source: 'https://bucket/key', destination: /tmp/x}", "s3://bucket/key"),
    ("S3Download", "{source: 's3://bucket', destination: /tmp/x}", "object key"),
    ("S3Download", "{source: 's3://bucket/k', destination: /tmp/x, recurse: true}", "unknown input"),
    ("S3Upload", "{source: /tmp/x, destination: '/tmp/y'}", "s3://bucket/key"),
    ("S3Upload", "{source: /tmp/x, destination: 's3:///key'}", "must name a bucket"),
    ("S3Upload", "{source: /tmp/x, destination: 's3://b/k', overwrite: true}", "unknown input"),
    ("S3Upload", "{destination: 's3://b/k'}", "missing required input"),
])
def test_invalid_inputs_are_rejected(run_doc: RunDoc, action: str, item: str, message: str) -> None:
    with pytest.raises(DocumentInvalid, match=message):
        run_doc(one_step(action, "                  - " + item))


def test_prefix_keys_cannot_escape_the_destination(run_doc: RunDoc, s3: Any, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="evil")
    s3.put_object(Bucket="evil", Key="p/../../escaped.txt", Body=b"gotcha")
    dest = tmp_path / "a/b"
    dest.mkdir(parents=True)
    execution = run_doc(one_step("S3Download", f"                  - {{source: 's3://evil/p/*', "
                                               f"destination: '{dest}'}}"))
    assert execution.status == "failed"
    assert "outside" in steps(execution)["Go"].failure_message
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "a/escaped.txt").exists()
