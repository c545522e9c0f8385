"""Downloads and uploads on a target whose files live under a root (as in an instance): every path,
including symbolic links with absolute targets, stays inside that root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.documents_net.conftest import RootedExecutor, RunDoc, WebServer, steps


def rooted(tmp_path: Path) -> tuple[RootedExecutor, Path]:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    # inside the target, /data points at an absolute path, which must mean <root>/<that path>
    (root / "data").symlink_to(outside)
    return RootedExecutor(root), outside


def test_downloads_land_inside_the_root(run_doc: RunDoc, web: WebServer, s3: Any, tmp_path: Path) -> None:
    web.files["/f"] = b"from the web"
    s3.create_bucket(Bucket="rooted")
    s3.put_object(Bucket="rooted", Key="obj", Body=b"from s3")
    s3.put_object(Bucket="rooted", Key="dir/a", Body=b"a")
    executor, outside = rooted(tmp_path)
    inside = executor.root / str(outside).lstrip("/")
    inside.mkdir(parents=True)
    execution = run_doc(f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Web
                action: WebDownload
                inputs:
                  - {{source: '{web.url('/f')}', destination: /data/web/f}}
              - name: S3
                action: S3Download
                inputs:
                  - {{source: 's3://rooted/obj', destination: /data/obj}}
                  - {{source: 's3://rooted/dir/*', destination: /data}}
    """, executor)
    assert execution.status == "success", [s.failure_message for s in execution.steps()]
    assert steps(execution)["Web"].outputs == [{"destination": "/data/web/f"}]
    assert (inside / "web/f").read_bytes() == b"from the web"
    assert (inside / "obj").read_bytes() == b"from s3"
    assert (inside / "a").read_bytes() == b"a"
    assert list(outside.iterdir()) == []


def test_uploads_read_inside_the_root(run_doc: RunDoc, s3: Any, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="rooted")
    executor, outside = rooted(tmp_path)
    (outside / "secret").write_text("host secret")
    inside = executor.root / str(outside).lstrip("/")
    inside.mkdir(parents=True)
    (inside / "secret").write_text("target file")
    (executor.root / "srv").mkdir()
    (executor.root / "srv/link").symlink_to(outside / "secret")  # absolute: resolved in the root
    execution = run_doc("""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Up
                action: S3Upload
                inputs:
                  - {source: /data/secret, destination: 's3://rooted/one'}
                  - {source: /srv, destination: 's3://rooted/srv/', recurse: true}
    """, executor)
    assert execution.status == "success", [s.failure_message for s in execution.steps()]
    assert s3.get_object(Bucket="rooted", Key="one")["Body"].read() == b"target file"
    assert s3.get_object(Bucket="rooted", Key="srv/link")["Body"].read() == b"target file"
