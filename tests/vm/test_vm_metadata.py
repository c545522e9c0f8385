"""The metadata endpoint's IMDSv2 rules, first as a function of one request, then as the program QEMU
runs for each guest connection (the connection a socket on its stdin, stdout and stderr): a token
one connection got is good on the next, which is another process."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
from pathlib import Path

from kiln.runtime import vm_metadata
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


def _connection(config: Path, request: bytes) -> bytes:
    """One guest connection as QEMU's guestfwd hands it over: a socket on the program's 0, 1 and 2."""
    guest, program = socket.socketpair()
    with guest, program:
        endpoint = subprocess.Popen([sys.executable, "-I", "-S", vm_metadata.__file__, str(config)],
                                    stdin=program, stdout=program, stderr=program)
        program.close()
        guest.sendall(request)
        guest.shutdown(socket.SHUT_WR)
        answer = b""
        while data := guest.recv(65536):
            answer += data
        assert endpoint.wait(timeout=30) == 0
    return answer


def test_each_connection_is_answered_by_its_own_process_and_tokens_carry_over(tmp_path: Path) -> None:
    config = tmp_path / "metadata.json"
    config.write_text(json.dumps({**vars(_metadata("required")), "token_secret": secrets.token_hex(32)}))
    refused = _connection(config, b"GET /latest/meta-data/ami-id HTTP/1.0\r\n\r\n")
    assert refused.startswith(b"HTTP/1.0 401"), refused[:200]
    issued = _connection(config, b"PUT /latest/api/token HTTP/1.0\r\n"
                                 b"X-aws-ec2-metadata-token-ttl-seconds: 300\r\n\r\n")
    assert issued.startswith(b"HTTP/1.0 200"), issued[:200]
    token = issued.split(b"\r\n\r\n", 1)[1].decode()
    got = _connection(config, f"GET /latest/meta-data/instance-id HTTP/1.0\r\n"
                              f"X-aws-ec2-metadata-token: {token}\r\n\r\n".encode())
    assert got.startswith(b"HTTP/1.0 200") and got.endswith(b"\r\n\r\ni-0123456789abcdef0"), got[:300]
    # another instance (another secret) does not take this instance's token
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**vars(_metadata("required")), "token_secret": secrets.token_hex(32)}))
    stolen = _connection(other, f"GET /latest/meta-data/instance-id HTTP/1.0\r\n"
                                f"X-aws-ec2-metadata-token: {token}\r\n\r\n".encode())
    assert stolen.startswith(b"HTTP/1.0 401")
    log = (tmp_path / "metadata.log").read_text()  # the log, not stderr: stderr is the guest's socket
    assert log.count("GET /latest/meta-data") == 3 and "PUT /latest/api/token 200" in log
