"""The host executor: documents run directly on this machine, as ``awstoe run`` does.

Each process starts in its own session, so a timeout kills its whole process group (grandchildren
included). A reboot request is recorded, never carried out: the engine then re-runs the step, as
AWSTOE does when it resumes after a reboot.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from kiln.documents.executor import OsInfo, OutputSink, ProcessResult, os_info_from_release
from kiln.documents.network import HOST
from kiln.documents.process_output import OutputCapture, pump

# After the main process exits, how long background children may keep our pipes open.
PIPE_GRACE = 1.0


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class HostExecutor:
    """Runs processes on the host; ``host_path`` is the identity. Network actions reach what the host
    reaches, with the host's AWS credentials (as ``awstoe run`` does)."""

    network = HOST

    def __init__(self) -> None:
        self.reboots: list[datetime] = []

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        stdin: bytes | None = None,
        on_stdout: OutputSink | None = None,
        on_stderr: OutputSink | None = None,
    ) -> ProcessResult:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=None if env is None else {**os.environ, **env},
            cwd=cwd,
            start_new_session=True,
        )
        if stdin is not None and process.stdin is not None:
            try:
                process.stdin.write(stdin)
                process.stdin.close()
            except BrokenPipeError:
                pass
        deadline = None if timeout is None else time.monotonic() + timeout
        assert process.stdout is not None and process.stderr is not None
        out, err = OutputCapture(on_stdout), OutputCapture(on_stderr)
        try:
            timed_out = pump(
                process,
                {process.stdout.fileno(): out, process.stderr.fileno(): err},
                deadline=deadline,
                kill=lambda: _kill_group(process.pid),
                grace=PIPE_GRACE,
            )
        except BaseException:  # interrupted (Ctrl-C): leave nothing of the step running
            _kill_group(process.pid)
            process.wait()
            raise
        finally:
            process.stdout.close()
            process.stderr.close()
        if timed_out:
            _kill_group(process.pid)
        exit_code = process.wait()
        return ProcessResult(exit_code, out.text(), err.text(), timed_out)

    def host_path(self, path: str) -> Path:
        return Path(path)

    def reboot(self) -> None:
        """Record the request; the host itself is never restarted."""
        self.reboots.append(datetime.now(UTC))

    def os_info(self) -> OsInfo:
        try:
            text = Path("/etc/os-release").read_text()
        except OSError:
            text = ""
        return os_info_from_release(text)

    def user_id(self, name: str) -> int:
        if name.isdigit():
            return int(name)
        try:
            return pwd.getpwnam(name).pw_uid
        except KeyError:
            raise LookupError(f"no user '{name}' on the host") from None

    def group_id(self, name: str) -> int:
        if name.isdigit():
            return int(name)
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            raise LookupError(f"no group '{name}' on the host") from None
