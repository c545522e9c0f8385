"""Network actions obey the executor's network: nothing without one, never the host's own local
services from an instance, and never the host's AWS identity from an instance."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from tests.documents_net.conftest import RootedExecutor, RunDoc, WebServer, steps

from kiln.documents.actions import s3 as s3_action
from kiln.documents.network import NO_NETWORK, NetworkPolicy, NetworkRefused, allowed_addresses, host_local

INSTANCE_NETWORK = NetworkPolicy(reachable=True)  # an instance on the network, no host-local access


def executor(root: Path, policy: NetworkPolicy) -> RootedExecutor:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "os-release").write_text("ID=debian\nVERSION_ID=12\n")
    target = RootedExecutor(root)
    target.network = policy  # type: ignore[misc]
    return target


def download_document(url: str) -> str:
    return f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fetch
                action: WebDownload
                inputs:
                  - source: {url}
                    destination: /opt/secret.txt
    """


@pytest.mark.parametrize(
    ("policy", "why"),
    [(NO_NETWORK, "the instance has no network"), (INSTANCE_NETWORK, "is a host-local address")],
)
def test_web_download_cannot_reach_the_hosts_loopback(
    run_doc: RunDoc, web: WebServer, tmp_path: Path, policy: NetworkPolicy, why: str
) -> None:
    web.files["/latest/meta-data"] = b"host secret"
    url = web.url("/latest/meta-data")
    execution = run_doc(download_document(url), executor(tmp_path, policy))
    step = steps(execution)["Fetch"]
    assert step.status == "failed"
    assert step.failure_message.startswith(f"{url}: refused: 127.0.0.1")
    assert why in step.failure_message
    assert web.hits == {}  # not even a connection
    assert not (tmp_path / "opt" / "secret.txt").exists()


def test_the_host_executor_still_reaches_loopback(run_doc: RunDoc, web: WebServer, tmp_path: Path) -> None:
    web.files["/file"] = b"ok"
    execution = run_doc(download_document(web.url("/file")), executor(tmp_path, RootedExecutor.network))
    assert steps(execution)["Fetch"].status == "success"
    assert (tmp_path / "opt" / "secret.txt").read_bytes() == b"ok"


def test_a_configuration_may_allow_host_local_addresses(run_doc: RunDoc, web: WebServer, tmp_path: Path) -> None:
    web.files["/file"] = b"allowed"
    allowed = NetworkPolicy(reachable=True, host_local=True)
    execution = run_doc(download_document(web.url("/file")), executor(tmp_path, allowed))
    assert steps(execution)["Fetch"].status == "success"


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.8.9.10", "::1", "169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254",
     "0.0.0.0", "::ffff:127.0.0.1"],
)
def test_host_local_addresses(address: str) -> None:
    assert host_local(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["192.0.2.10", "2001:db8::1", "10.1.2.3"])
def test_other_addresses_are_not_host_local(address: str) -> None:
    assert not host_local(ipaddress.ip_address(address))


def test_a_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(NetworkRefused, match=r"localhost \(.*127\.0\.0\.1.*\) is a host-local address"):
        allowed_addresses(INSTANCE_NETWORK, "localhost", 80)


def test_s3_from_an_instance_never_uses_the_hosts_credentials(s3: Any) -> None:
    # The host has credentials (the fixture's env); an instance without a mapped profile signs nothing.
    from botocore import UNSIGNED

    client = s3_action.client(NetworkPolicy(reachable=True, host_local=True))
    assert client.meta.config.signature_version is UNSIGNED
    host = s3_action.client()
    assert host.meta.config.signature_version is not UNSIGNED
    assert host._request_signer._credentials.access_key == "testing"


def test_s3_uses_the_profile_the_instance_profile_maps_to(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("[builder]\naws_access_key_id = BUILDERKEY\naws_secret_access_key = secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    client = s3_action.client(NetworkPolicy(reachable=True, host_local=True, aws_profile="builder"))
    assert client._request_signer._credentials.access_key == "BUILDERKEY"


def test_s3_to_a_loopback_endpoint_is_refused_from_an_instance(
    s3: Any, run_doc: RunDoc, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="tool.txt", Body=b"tool")
    document = """
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fetch
                action: S3Download
                inputs:
                  - source: s3://artifacts/tool.txt
                    destination: /opt/tool.txt
    """
    execution = run_doc(document, executor(tmp_path, INSTANCE_NETWORK))
    step = steps(execution)["Fetch"]
    assert step.status == "failed"
    assert step.failure_message.startswith("s3://artifacts/tool.txt: refused: 127.0.0.1")
    assert not (tmp_path / "opt" / "tool.txt").exists()
    execution = run_doc(document, executor(tmp_path, NO_NETWORK))
    assert "the instance has no network" in steps(execution)["Fetch"].failure_message
