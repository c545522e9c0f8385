"""The S3 relay of a VM instance (kiln.runtime.vm_s3_relay) without a VM: the relay runs as QEMU's
guestfwd runs it, a process per connection with the connection on its stdin and stdout (a socket
pair here), against the session's moto server, and the guest's client (kiln.documents.s3_relay_client)
talks to it. The S3 actions run with that client fail in a sandbox's words; the policy is the host's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.documents_net.conftest import RootedExecutor, RunDoc, steps

from kiln.documents.actions.s3 import S3Failed
from kiln.documents.network import NetworkPolicy, NetworkRefused
from kiln.documents.s3_relay_client import RelayS3, UploadFailed
from kiln.runtime import vm_s3_relay

# moto listens on loopback; it lets anonymous requests list, but not read objects
ALLOWED = NetworkPolicy(reachable=True, host_local=True, aws_profile="builder")
OWNER = "123456789012"  # moto's account


class Relay:
    """Opens connections to relay processes for one CONFIG; every process is waited for."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.processes: list[subprocess.Popen[bytes]] = []
        self.guests: list[socket.socket] = []

    def open(self) -> socket.socket:
        guest, program = socket.socketpair()
        self.guests.append(guest)
        with program:
            self.processes.append(subprocess.Popen(
                [sys.executable, "-I", vm_s3_relay.__file__, str(self.config)],
                stdin=program, stdout=program, stderr=program))
        return guest

    def client(self) -> RelayS3:
        return RelayS3(self.open)


@pytest.fixture
def relay_for(s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[NetworkPolicy | None],
                                                                                         Relay]]:
    """Relays for a policy; the AWS profile "builder" has credentials moto takes."""
    credentials = tmp_path / "credentials"
    credentials.write_text("[builder]\naws_access_key_id = BUILDERKEY\naws_secret_access_key = secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    relays: list[Relay] = []

    def make(policy: NetworkPolicy | None) -> Relay:
        config = tmp_path / f"relay-{len(relays)}" / vm_s3_relay.CONFIG_NAME
        config.parent.mkdir()
        vm_s3_relay.write_config(config, policy)
        relays.append(Relay(config))
        return relays[-1]

    yield make
    for relay in relays:
        for guest in relay.guests:  # the guest hangs up: each relay process ends
            guest.close()
        for process in relay.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise


def test_list_get_and_put_through_the_relay(s3: Any, relay_for: Callable[..., Relay], tmp_path: Path) -> None:
    s3.create_bucket(Bucket="relayed")
    big = os.urandom(5 * (1 << 20) + 17)  # several of the relay's blocks
    s3.put_object(Bucket="relayed", Key="p/big.bin", Body=big)
    s3.put_object(Bucket="relayed", Key="p/small.txt", Body=b"small")
    s3.put_object(Bucket="relayed", Key="other.txt", Body=b"other")
    relay = relay_for(ALLOWED)
    client = relay.client()
    listed = client.list_objects_v2(Bucket="relayed", Prefix="p/", MaxKeys=1000, ExpectedBucketOwner=OWNER)
    assert [entry["Key"] for entry in listed["Contents"]] == ["p/big.bin", "p/small.txt"]
    assert listed["IsTruncated"] is False
    assert client.list_objects_v2(Bucket="relayed", Prefix="p/", MaxKeys=1)["IsTruncated"] is True

    got = client.get_object(Bucket="relayed", Key="p/big.bin")
    chunks = list(got["Body"].iter_chunks(1 << 16))
    assert got["ContentLength"] == len(big) and b"".join(chunks) == big
    assert max(len(chunk) for chunk in chunks) <= 1 << 16, "streamed in the caller's chunks"
    # the same connection goes on after a body read to its end
    assert b"".join(client.get_object(Bucket="relayed", Key="other.txt")["Body"].iter_chunks(10)) == b"other"

    source = tmp_path / "up.bin"
    source.write_bytes(big[::-1])
    client.upload_file(str(source), "relayed", "up/loaded.bin", ExtraArgs={"ExpectedBucketOwner": OWNER})
    assert s3.get_object(Bucket="relayed", Key="up/loaded.bin")["Body"].read() == big[::-1]
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    client.upload_file(str(empty), "relayed", "up/empty", ExtraArgs=None)
    assert s3.get_object(Bucket="relayed", Key="up/empty")["Body"].read() == b""
    assert len(relay.processes) == 1, "one connection (one relay process) for all of it"
    log = (relay.config.parent / "s3-relay.log").read_text()
    assert "GET /object?bucket=relayed&key=p%2Fbig.bin 200" in log, log


def test_failures_come_back_in_the_words_of_a_sandbox(s3: Any, relay_for: Callable[..., Relay],
                                                      tmp_path: Path) -> None:
    s3.create_bucket(Bucket="relayed")
    client = relay_for(ALLOWED).client()
    with pytest.raises(S3Failed) as missing:
        client.get_object(Bucket="relayed", Key="missing.bin")
    assert missing.value.detail == "no such object"
    with pytest.raises(S3Failed) as no_bucket:
        client.list_objects_v2(Bucket="no-such-bucket", Prefix="")
    assert no_bucket.value.detail.startswith("NoSuchBucket"), no_bucket.value.detail
    s3.put_object(Bucket="relayed", Key="private", Body=b"p")
    anonymous = relay_for(NetworkPolicy(reachable=True, host_local=True)).client()  # no profile: unsigned
    with pytest.raises(S3Failed) as denied:
        anonymous.get_object(Bucket="relayed", Key="private")
    assert denied.value.detail.startswith("access denied"), denied.value.detail
    source = tmp_path / "file.txt"
    source.write_bytes(b"x" * 100_000)
    with pytest.raises(UploadFailed) as upload:
        client.upload_file(str(source), "no-such-bucket", "k", ExtraArgs=None)
    assert str(upload.value).startswith(f"Failed to upload {source} to no-such-bucket/k: An error occurred "
                                        "(NoSuchBucket)"), str(upload.value)
    # after the failures (an upload's body included) the connection still answers
    s3.put_object(Bucket="relayed", Key="ok", Body=b"ok")
    assert b"".join(client.get_object(Bucket="relayed", Key="ok")["Body"].iter_chunks(10)) == b"ok"


@pytest.mark.parametrize(("policy", "words"), [
    (NetworkPolicy(reachable=False), "the instance has no network (its infrastructure configuration says "
                                     "subnetId: none)"),
    (NetworkPolicy(reachable=True), "127.0.0.1) is a host-local address"),
    (None, vm_s3_relay.NO_POLICY),
])
def test_the_hosts_policy_refuses(s3: Any, relay_for: Callable[..., Relay], policy: NetworkPolicy | None,
                                  words: str) -> None:
    with pytest.raises(NetworkRefused, match=r".*") as refused:
        relay_for(policy).client()
    assert words in str(refused.value), str(refused.value)


def test_the_relay_uses_the_endpoint_and_profile_of_its_launch(
    s3: Any, relay_for: Callable[..., Relay], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay's settings are those kiln had when the VM launched, not those of its later environment."""
    s3.create_bucket(Bucket="relayed")
    s3.put_object(Bucket="relayed", Key="k", Body=b"v")
    relay = relay_for(ALLOWED)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    client = relay.client()
    assert b"".join(client.get_object(Bucket="relayed", Key="k")["Body"].iter_chunks(10)) == b"v"
    missing_profile = relay_for(NetworkPolicy(reachable=True, host_local=True, aws_profile="nobody"))
    with pytest.raises(S3Failed, match="nobody"):
        missing_profile.client()


class RelayedExecutor(RootedExecutor):
    """A target whose S3 client is the relay's, as the guest runner's executor is."""

    relay: Relay

    def s3_client(self, policy: NetworkPolicy) -> RelayS3:
        return self.relay.client()


def test_the_actions_through_the_relay(s3: Any, relay_for: Callable[..., Relay], run_doc: RunDoc,
                                       tmp_path: Path) -> None:
    s3.create_bucket(Bucket="down")
    s3.put_object(Bucket="down", Key="p/x.txt", Body=b"X")
    s3.put_object(Bucket="down", Key="p/q/y.txt", Body=b"Y")
    s3.put_object(Bucket="down", Key="p/../../escape", Body=b"E")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    (root / "in/sub").mkdir(parents=True)
    (root / "in/a.txt").write_text("A")
    (root / "in/sub/b.txt").write_text("B")
    (root / "out").mkdir()
    target = RelayedExecutor(root)
    target.relay = relay_for(ALLOWED)
    execution = run_doc("""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Up
                action: S3Upload
                inputs:
                  - {source: /in, destination: 's3://down/up/', recurse: true}
              - name: Down
                action: S3Download
                inputs:
                  - {source: 's3://down/p/x.txt', destination: /out/}
              - name: Missing
                action: S3Download
                inputs:
                  - {source: 's3://down/missing.bin', destination: /out/m}
    """, target)
    assert steps(execution)["Up"].status == "success", steps(execution)["Up"].failure_message
    assert s3.get_object(Bucket="down", Key="up/sub/b.txt")["Body"].read() == b"B"
    assert s3.get_object(Bucket="down", Key="up/a.txt")["Body"].read() == b"A"
    assert (root / "out/x.txt").read_bytes() == b"X"
    assert steps(execution)["Missing"].failure_message == "s3://down/missing.bin: no such object"
    escape = run_doc("""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Escape
                action: S3Download
                inputs:
                  - {source: 's3://down/p/*', destination: /out}
    """, target)
    assert "would be written outside /out" in steps(escape)["Escape"].failure_message
    assert not (tmp_path / "escape").exists() and not (root / "escape").exists()
    refused = RelayedExecutor(root)
    refused.relay = relay_for(NetworkPolicy(reachable=False))
    execution = run_doc(one_download("s3://down/p/x.txt", "/out/again.txt"), refused)
    message = steps(execution)["Go"].failure_message
    assert message.startswith("s3://down/p/x.txt: refused: 127.0.0.1: the instance has no network"), message
    assert not (root / "out/again.txt").exists()
    sandbox = RootedExecutor(root)  # the same step run host-side with the same policy: the same words
    sandbox.network = NetworkPolicy(reachable=False)  # type: ignore[misc]
    assert steps(run_doc(one_download("s3://down/p/x.txt", "/out/again.txt"), sandbox))["Go"].failure_message == \
        message


def one_download(source: str, destination: str) -> str:
    return f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Go
                action: S3Download
                inputs:
                  - {{source: '{source}', destination: '{destination}'}}
    """
