"""``kiln serve`` as a process: where it listens, the first-start key, the access log, TLS, and a
SIGTERM that lets the request in flight finish, stops the scheduler and exits 0."""

from __future__ import annotations

import ipaddress
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.api.conftest import ServeProcess, start

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_first_start_creates_and_shows_one_key(kiln_home: Path, tmp_path: Path) -> None:
    first = start(kiln_home, tmp_path / "first.log")
    try:
        shown = dict(re.findall(r"(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY)=(\S+)", first.stderr()))
        key = {"AccessKeyId": shown["AWS_ACCESS_KEY_ID"], "SecretAccessKey": shown["AWS_SECRET_ACCESS_KEY"]}
        assert first.client("sts", key=key).get_caller_identity()["Account"] == "123456789012"
    finally:
        assert first.stop() == 0
    again = start(kiln_home, tmp_path / "again.log")
    try:
        assert "AWS_SECRET_ACCESS_KEY" not in again.stderr()
        assert again.client("sts", key=key).get_caller_identity()["Account"] == "123456789012"
    finally:
        assert again.stop() == 0


def test_access_log_line_per_request(serve_process: ServeProcess) -> None:
    server = serve_process
    server.client("sts").get_caller_identity()
    server.client("imagebuilder").list_components()
    deadline = time.monotonic() + 5
    while "imagebuilder:ListComponents" not in server.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = server.stderr().splitlines()
    assert any(re.search(r" POST sts:GetCallerIdentity 123456789012 200 \d+\.\dms$", line) for line in lines), lines
    assert any(re.search(r" POST imagebuilder:ListComponents 123456789012 200 \d+\.\dms$", line) for line in lines)
    assert any(line.startswith("scheduler ") and "running" in line for line in lines), lines  # in the same process


def _signed_sts(server: ServeProcess) -> tuple[str, bytes]:
    """A signed GetCallerIdentity as raw HTTP: (head, body)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(Credentials(server.key["AccessKeyId"], server.key["SecretAccessKey"]), "sts", "us-east-1"
              ).add_auth(request)
    prepared = request.prepare()
    host = server.endpoint.split("://", 1)[1]
    headers = {**dict(prepared.headers), "Host": host, "Content-Length": str(len(body))}
    head = "POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head, body


def test_sigterm_answers_the_request_in_flight_and_exits_0(serve_process: ServeProcess) -> None:
    server = serve_process
    head, body = _signed_sts(server)
    host, port = server.endpoint.split("://", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head.encode() + body[:10])  # the request is in flight: half its body sent
        time.sleep(0.3)
        server.process.send_signal(15)
        time.sleep(0.5)
        assert server.process.poll() is None  # still draining
        connection.sendall(body[10:])
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert b"<Account>123456789012</Account>" in answer
    assert server.process.wait(timeout=30) == 0
    assert "Traceback" not in server.stderr()
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=2).close()


def test_tls(kiln_home: Path, tmp_path: Path) -> None:
    cryptography = pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    assert cryptography
    from kiln.services.accounts.accounts import create_access_key

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    access = create_access_key("123456789012")
    secure = start(kiln_home, tmp_path / "tls.log", "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key",
                   str(tmp_path / "key.pem"), key=access)
    try:
        assert secure.endpoint.startswith("https://127.0.0.1:")
        import boto3

        sts = boto3.client("sts", endpoint_url=secure.endpoint, region_name="us-east-1",
                           verify=str(tmp_path / "cert.pem"), aws_access_key_id=access["AccessKeyId"],
                           aws_secret_access_key=access["SecretAccessKey"])
        assert sts.get_caller_identity()["Account"] == "123456789012"
        sts.close()  # an idle TLS connection would hold the server's shutdown until its SSL close times out
    finally:
        assert secure.stop() == 0


def _kiln(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "kiln", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "KILN_HOME": str(home)})


def test_refusals(kiln_home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = _kiln(kiln_home, "serve", "--port", str(taken.getsockname()[1]))
    assert busy.returncode != 0
    assert "cannot listen on 127.0.0.1" in busy.stderr
    half = _kiln(kiln_home, "serve", "--port", "0", "--tls-cert", "/nonexistent.pem")
    assert half.returncode != 0
    assert "--tls-cert and --tls-key go together" in half.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = (ROOT / "packaging" / "kiln.service").read_text()
    assert "ExecStart=/usr/local/bin/kiln serve " in unit
    assert "KillSignal=SIGTERM" in unit
    local = tmp_path / "kiln.service"
    local.write_text(unit.replace("/usr/local/bin/kiln", f"{sys.executable} -m kiln"))
    checked = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert "kiln.service" not in checked.stderr or checked.returncode == 0, checked.stderr
