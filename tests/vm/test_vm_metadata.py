"""The metadata endpoint's IMDSv2 rules, first as a function of one request, then as the real server
process kiln starts (over HTTP on loopback) and through the relay QEMU runs per guest connection."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kiln.runtime import vm_metadata, vm_process, vm_relay
from kiln.runtime.vm_metadata import Metadata, Tokens, answer

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ8yJmHcbYBZkbyTPOsk1NTxo6wJsXyh1GAnS1ks1e1b test"


def _metadata(tokens: str = "required") -> Metadata:
    return Metadata(ami_id="ami-0123456789abcdef0", instance_id="i-0123456789abcdef0", instance_type="t3.micro",
                    local_ipv4="169.254.0.15", hostname="i-0123456789abcdef0", http_tokens=tokens,
                    public_keys={"laptop": KEY}, user_data="#cloud-config\n{}\n")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_issued_for_a_valid_ttl_only() -> None:
    tokens = Tokens()
    metadata = _metadata()
    for ttl in ("", "0", "21601", "abc", "-5"):
        headers = {"x-aws-ec2-metadata-token-ttl-seconds": ttl} if ttl else {}
        assert answer(metadata, tokens, "PUT", "/latest/api/token", headers).status == 400, ttl
    issued = answer(metadata, tokens, "PUT", "/latest/api/token", {"x-aws-ec2-metadata-token-ttl-seconds": "21600"})
    assert issued.status == 200 and len(issued.body) > 40
    assert issued.headers == {"x-aws-ec2-metadata-token-ttl-seconds": "21600"}


def test_a_token_request_through_a_proxy_is_forbidden() -> None:
    headers = {"x-aws-ec2-metadata-token-ttl-seconds": "60", "x-forwarded-for": "10.0.0.1"}
    assert answer(_metadata(), Tokens(), "PUT", "/latest/api/token", headers).status == 403


def test_required_tokens_refuse_a_get_without_one_and_answer_with_one() -> None:
    tokens = Tokens()
    metadata = _metadata("required")
    assert answer(metadata, tokens, "GET", "/latest/meta-data/ami-id", {}).status == 401
    token = tokens.issue(60)
    got = answer(metadata, tokens, "GET", "/latest/meta-data/ami-id", {"x-aws-ec2-metadata-token": token})
    assert (got.status, got.body) == (200, "ami-0123456789abcdef0")
    forged = answer(metadata, tokens, "GET", "/latest/meta-data/ami-id", {"x-aws-ec2-metadata-token": "forged"})
    assert forged.status == 401


def test_optional_tokens_answer_imdsv1_but_still_check_a_presented_token() -> None:
    tokens = Tokens()
    metadata = _metadata("optional")
    assert answer(metadata, tokens, "GET", "/latest/meta-data/instance-type", {}).body == "t3.micro"
    assert answer(metadata, tokens, "GET", "/latest/meta-data/instance-type",
                  {"x-aws-ec2-metadata-token": "stale"}).status == 401


def test_a_token_expires_after_its_ttl() -> None:
    clock = Clock()
    tokens = Tokens(clock)
    token = tokens.issue(10)
    headers = {"x-aws-ec2-metadata-token": token}
    clock.now += 9.5
    assert answer(_metadata(), tokens, "GET", "/latest/meta-data/instance-id", headers).status == 200
    clock.now += 1
    assert answer(_metadata(), tokens, "GET", "/latest/meta-data/instance-id", headers).status == 401


def test_the_metadata_tree() -> None:
    tokens = Tokens()
    metadata = _metadata("optional")

    def get(path: str) -> tuple[int, str]:
        got = answer(metadata, tokens, "GET", path, {})
        return got.status, got.body

    listing = get("/latest/meta-data/")[1].splitlines()
    assert {"ami-id", "instance-id", "instance-type", "local-ipv4", "public-keys/"} <= set(listing)
    assert get("/latest/meta-data/local-ipv4") == (200, "169.254.0.15")
    assert get("/latest/meta-data/public-keys/") == (200, "0=laptop")
    assert get("/latest/meta-data/public-keys/0/") == (200, "openssh-key")
    assert get("/latest/meta-data/public-keys/0/openssh-key") == (200, KEY)
    assert get("/latest/user-data") == (200, "#cloud-config\n{}\n")
    assert get("/latest/meta-data/no-such-thing")[0] == 404
    assert answer(metadata, tokens, "POST", "/latest/meta-data/ami-id", {}).status == 405


def _request(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_server_process_and_the_relay(tmp_path: Path) -> None:
    """The server kiln starts for a VM answers IMDSv2 over HTTP; the relay QEMU runs per guest
    connection carries a request to it and back; stopping it by its pid ends it."""
    config = tmp_path / "metadata.json"
    config.write_text(json.dumps(vars(_metadata("required"))))
    vm = {"metadata_config": str(config)}
    port = vm_process.free_port()
    helper = vm_process._metadata_ready(vm_process._start_metadata(vm, tmp_path, port), vm, tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        assert _request(f"{base}/latest/meta-data/ami-id")[0] == 401
        status, token = _request(f"{base}/latest/api/token", "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": "300"})
        assert status == 200
        assert _request(f"{base}/latest/meta-data/ami-id", headers={"X-aws-ec2-metadata-token": token}) == (
            200, "ami-0123456789abcdef0")
        # the relay, as QEMU's guestfwd runs it: the guest's connection on stdin and stdout
        raw = (f"GET /latest/meta-data/instance-id HTTP/1.0\r\nX-aws-ec2-metadata-token: {token}\r\n\r\n").encode()
        relayed = subprocess.run([sys.executable, "-I", "-S", vm_relay.__file__, "127.0.0.1", str(port)],
                                 input=raw, capture_output=True, timeout=30, check=True)
        assert relayed.stdout.startswith(b"HTTP/1.0 200"), relayed.stdout[:200]
        assert relayed.stdout.endswith(b"\r\n\r\ni-0123456789abcdef0")
    finally:
        vm_process.stop_process(helper)
    from kiln.runtime import procs

    assert not procs.is_alive(helper.pid, helper.start_time)
    with pytest.raises(OSError):
        _request(f"http://127.0.0.1:{port}/latest/meta-data/ami-id")
    assert vm_metadata.__file__.endswith("vm_metadata.py")
