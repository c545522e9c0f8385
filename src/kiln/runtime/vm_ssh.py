"""``kiln instance exec`` in a VM instance: OpenSSH to the guest's forwarded SSH port, as root with
the instance's own key (put in the guest by cloud-init from the NoCloud seed). The guest's host key
is not checked: the port is on the host's loopback and forwarded by the instance's own QEMU."""

from __future__ import annotations

import shlex
import shutil
import socket
from collections.abc import Mapping, Sequence

from kiln.documents.executor import OutputSink, ProcessResult
from kiln.ec2_errors import IncorrectInstanceState
from kiln.errors import SystemRequirement
from kiln.runtime import procs, records
from kiln.runtime.exec import run_captured
from kiln.runtime.records import Instance

SSH_FAILED = 255  # ssh's own exit status when it could not connect or log in
CONNECT_SECONDS = 10


def ssh_argv(instance: Instance, remote: str, *, connect_timeout: int = CONNECT_SECONDS) -> list[str]:
    vm = instance.vm or {}
    ssh = shutil.which("ssh")
    if ssh is None:
        raise SystemRequirement("ssh is not installed", hint="apt-get install openssh-client")
    return [
        ssh, "-q", "-T", "-p", str(vm["ssh_port"]), "-i", vm["ssh_key"], "-l", vm.get("ssh_user", "root"),
        "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", f"ConnectTimeout={connect_timeout}",
        "127.0.0.1", remote,
    ]  # fmt: skip


def ssh_answers(instance: Instance, timeout: float = 3.0) -> bool:
    """Whether the guest's SSH server greets on the forwarded port (and an ``ssh`` client is here)."""
    port = (instance.vm or {}).get("ssh_port")
    if port is None or shutil.which("ssh") is None:
        return False
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=timeout) as sock:
            return sock.recv(4) == b"SSH-"
    except OSError:
        return False


def remote_command(argv: Sequence[str], *, env: Mapping[str, str] | None, cwd: str | None) -> str:
    """One shell line for the guest: ``cd`` and ``env`` before the quoted command."""
    line = shlex.join(argv)
    if env:
        line = "env " + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + " " + line
    if cwd:
        line = f"cd {shlex.quote(cwd)} && {line}"
    return line


def exec_vm(
    instance_id: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    stdin: bytes | None = None,
    on_stdout: OutputSink | None = None,
    on_stderr: OutputSink | None = None,
) -> ProcessResult:
    """Run ``argv`` in the running VM instance over SSH; the exit code is the command's (255: ssh could
    not reach the guest, e.g. still booting)."""
    if not argv:
        raise ValueError("empty command")
    instance = records.get(instance_id)
    guest = instance.init
    if instance.state != records.RUNNING or guest is None or not procs.is_alive(guest.pid, guest.start_time):
        raise IncorrectInstanceState(f"instance {instance_id} is not running (state {instance.state})",
                                     hint=f"kiln instance start {instance_id}")
    command = ssh_argv(instance, remote_command(argv, env=env, cwd=cwd))
    return run_captured(command, timeout=timeout, stdin=stdin, on_stdout=on_stdout, on_stderr=on_stderr)
