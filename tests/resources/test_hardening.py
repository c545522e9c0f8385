"""kiln-hardening-linux's own scripts, run with bash inside bubblewrap over a fake /etc and unit dir."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from kiln.services.components.managed import managed_document

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("bwrap") is None, reason="needs root and bubblewrap"
)

DOCUMENT = yaml.safe_load(managed_document("kiln-hardening-linux"))
DEFAULTS = {name: spec["default"] for entry in DOCUMENT["parameters"] for name, spec in entry.items()}


def phase_script(phase: str) -> str:
    steps = next(item for item in DOCUMENT["phases"] if item["name"] == phase)["steps"]
    scripts = []
    for step in steps:
        assert step["action"] == "ExecuteBash"
        body = "\n".join(step["inputs"]["commands"])
        scripts.append(f"(\n{body}\n) || exit 1")
    text = "\n".join(scripts)
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda match: str(DEFAULTS[match.group(1)]), text)


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    etc = tmp_path / "etc"
    (etc / "ssh" / "sshd_config.d").mkdir(parents=True)
    (etc / "ssh" / "sshd_config").write_text(
        "Include /etc/ssh/sshd_config.d/*.conf\n#PermitRootLogin prohibit-password\n"
        "PasswordAuthentication yes\nX11Forwarding yes\n"
    )
    (etc / "login.defs").write_text("PASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\nPASS_WARN_AGE\t7\n")
    wants = etc / "systemd" / "system" / "multi-user.target.wants"
    wants.mkdir(parents=True)
    units = tmp_path / "units"
    units.mkdir()
    (units / "cups.service").write_text("[Unit]\nDescription=CUPS\n")
    (units / "ssh.service").write_text("[Unit]\nDescription=OpenSSH\n")
    (wants / "cups.service").symlink_to("/lib/systemd/system/cups.service")
    (wants / "ssh.service").symlink_to("/lib/systemd/system/ssh.service")
    return tmp_path


def run(root: Path, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "bwrap",
            "--bind",
            "/",
            "/",
            "--bind",
            str(root / "etc"),
            "/etc",
            "--bind",
            str(root / "units"),
            "/usr/lib/systemd/system",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "bash",
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_build_hardens_and_validate_agrees(fake_root: Path) -> None:
    before = run(fake_root, phase_script("validate"))
    assert before.returncode != 0
    assert "PermitRootLogin" in before.stderr

    built = run(fake_root, phase_script("build"))
    assert built.returncode == 0, built.stderr
    etc = fake_root / "etc"
    assert "PermitRootLogin no" in (etc / "ssh" / "sshd_config.d" / "00-kiln-hardening.conf").read_text()
    assert "PasswordAuthentication no" in (etc / "ssh" / "sshd_config").read_text()
    assert "PASS_MAX_DAYS\t90" in (etc / "login.defs").read_text()
    assert os.readlink(etc / "systemd" / "system" / "cups.service") == "/dev/null"
    assert not (etc / "systemd" / "system" / "multi-user.target.wants" / "cups.service").is_symlink()
    assert (etc / "systemd" / "system" / "multi-user.target.wants" / "ssh.service").is_symlink()

    for phase in ("validate", "test"):
        checked = run(fake_root, phase_script(phase))
        assert checked.returncode == 0, checked.stderr
        assert "hardening baseline holds" in checked.stdout

    again = run(fake_root, phase_script("build"))  # idempotent
    assert again.returncode == 0, again.stderr
    assert run(fake_root, phase_script("test")).returncode == 0


def test_check_catches_a_regression(fake_root: Path) -> None:
    assert run(fake_root, phase_script("build")).returncode == 0
    dropin = fake_root / "etc" / "ssh" / "sshd_config.d" / "00-kiln-hardening.conf"
    dropin.write_text(dropin.read_text().replace("PermitRootLogin no", "PermitRootLogin yes"))
    (fake_root / "etc" / "systemd" / "system" / "cups.service").unlink()
    checked = run(fake_root, phase_script("test"))
    assert checked.returncode != 0
    assert "PermitRootLogin" in checked.stderr
    assert "cups.service is not masked" in checked.stderr


def test_without_sshd_or_login_defs_it_skips(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "units").mkdir()
    built = run(tmp_path, phase_script("build"))
    assert built.returncode == 0, built.stderr
    assert "sshd settings skipped" in built.stdout
    assert run(tmp_path, phase_script("validate")).returncode == 0
