"""A component's ``uri: s3://…`` read with the normal AWS credential chain, against moto's server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DOC = """name: from-s3
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Hello
        action: ExecuteBash
        inputs:
          commands: [echo hello]
"""


@pytest.fixture
def bucket(s3: Any, monkeypatch: pytest.MonkeyPatch, moto_server: Any) -> str:
    """A bucket holding the document; the endpoint is no longer in the environment."""
    s3.create_bucket(Bucket="components")
    s3.put_object(Bucket="components", Key="docs/hello.yaml", Body=DOC.encode())
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata lookups on this host
    return moto_server.endpoint


def create(kiln: Any, version: str, *extra: str, env: dict[str, str | None] | None = None) -> Any:
    return kiln("component", "create", "--name", "from-s3", "--semantic-version", version,
                "--uri", "s3://components/docs/hello.yaml", *extra, env=env)


def listed(kiln: Any) -> list[str]:
    result = kiln("component", "list", "--output", "json")
    return [entry["version"] for entry in json.loads(result.stdout)["componentVersionList"]]


def test_endpoint_url_option_and_environment(kiln: Any, bucket: str) -> None:
    result = create(kiln, "1.0.0", "--endpoint-url", bucket)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith("component/from-s3/1.0.0/1")
    result = create(kiln, "1.0.1", env={"AWS_ENDPOINT_URL": bucket})
    assert result.exit_code == 0, result.stderr
    data = json.loads(kiln("component", "get", result.stdout.strip(), "--output", "json").stdout)
    assert data["component"]["data"] == DOC


def test_shared_credentials_file_and_profile(kiln: Any, bucket: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("[builder]\naws_access_key_id = fromfile\naws_secret_access_key = fromfile\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    result = create(kiln, "1.0.0", "--endpoint-url", bucket, env={"AWS_PROFILE": "builder"})
    assert result.exit_code == 0, result.stderr


def test_no_credentials_says_so_and_suggests_inline_data(kiln: Any, bucket: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = create(kiln, "1.0.0", "--endpoint-url", bucket)
    assert result.exit_code in (1, 2)
    assert "cannot read s3://components/docs/hello.yaml: no AWS credentials were found" in result.stderr
    assert "give the document inline as `data`" in result.stderr
    assert "Traceback" not in result.stderr
    assert listed(kiln) == []


def test_missing_object_and_bad_endpoint(kiln: Any, bucket: str) -> None:
    result = kiln("component", "create", "--name", "from-s3", "--semantic-version", "1.0.0",
                  "--uri", "s3://components/docs/missing.yaml", "--endpoint-url", bucket)
    assert result.exit_code in (1, 2)
    assert "s3://components/docs/missing.yaml does not exist (NoSuchKey)" in result.stderr
    result = create(kiln, "1.0.0", "--endpoint-url", "not a url")
    assert result.exit_code in (1, 2)
    assert "cannot read s3://components/docs/hello.yaml" in result.stderr and "Traceback" not in result.stderr
    assert listed(kiln) == []
