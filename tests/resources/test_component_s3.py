"""Component documents from S3, served by moto in server mode (real HTTP, real boto3 serialisation)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.errors import NotFound
from kiln.services.components.resource import create_component, get_component


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = _free_port()
    server = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    command = [server] if server else [sys.executable, "-m", "moto.server"]
    process = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield endpoint
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def test_component_from_s3(moto_s3: str, simple_doc: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_s3)
    s3.create_bucket(Bucket="components")
    s3.put_object(Bucket="components", Key="docs/simple.yaml", Body=simple_doc.encode())
    body = {
        "name": "from-s3",
        "semanticVersion": "1.0.0",
        "platform": "Linux",
        "uri": "s3://components/docs/simple.yaml",
    }
    arn = create_component(body)["componentBuildVersionArn"]
    assert get_component(arn)["component"]["data"] == simple_doc
    # Same object again: unchanged; the stored document no longer depends on the bucket.
    assert create_component(body)["componentBuildVersionArn"] == arn
    s3.delete_object(Bucket="components", Key="docs/simple.yaml")
    assert get_component(arn)["component"]["data"] == simple_doc
    with pytest.raises(NotFound) as caught:
        create_component({**body, "semanticVersion": "1.0.1"})
    assert "s3://components/docs/simple.yaml" in caught.value.message
