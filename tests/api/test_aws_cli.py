"""The AWS CLI (``awscli``, a test extra) against ``kiln serve``: what users type, end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.api.conftest import Server

AWS = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
pytestmark = pytest.mark.skipif(AWS is None, reason="needs the AWS CLI (pip install awscli)")


def aws(server: Server, tmp_path: Path, *args: str, region: str = "local") -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_ACCESS_KEY_ID=server.key["AccessKeyId"],
               AWS_SECRET_ACCESS_KEY=server.key["SecretAccessKey"], AWS_DEFAULT_REGION=region,
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_MAX_ATTEMPTS="1")
    return subprocess.run([str(AWS), "--endpoint-url", server.endpoint, "--output", "json", *args],
                          capture_output=True, text=True, timeout=120, env=env)


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


@pytest.mark.slow
def test_the_aws_cli_speaks_to_kiln(server: Server, tmp_path: Path, busybox_dir: Path) -> None:
    from kiln.store import api

    ami = api.import_rootfs(busybox_dir, name="busybox-base")
    assert ok(aws(server, tmp_path, "sts", "get-caller-identity", region="us-east-1"))["Account"] == "123456789012"
    images = ok(aws(server, tmp_path, "ec2", "describe-images", "--owners", "self"))["Images"]
    assert [image["ImageId"] for image in images] == [ami]
    ok(aws(server, tmp_path, "ec2", "create-tags", "--resources", ami, "--tags", "Key=team,Value=web"))
    tags = ok(aws(server, tmp_path, "ec2", "describe-tags", "--filters", f"Name=resource-id,Values={ami}"))["Tags"]
    assert [(t["Key"], t["Value"]) for t in tags] == [("team", "web")]
    dry = aws(server, tmp_path, "ec2", "deregister-image", "--image-id", ami, "--dry-run")
    assert dry.returncode != 0 and "DryRunOperation" in dry.stderr
    assert ok(aws(server, tmp_path, "imagebuilder", "list-components"))["componentVersionList"] == []
    refused = aws(server, tmp_path, "organizations", "describe-organization", region="us-east-1")
    assert refused.returncode != 0 and "AWSOrganizationsNotInUseException" in refused.stderr
    assert ok(aws(server, tmp_path, "organizations", "create-organization", region="us-east-1"))["Organization"][
        "MasterAccountId"] == "123456789012"
