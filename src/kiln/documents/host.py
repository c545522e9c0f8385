"""The host executor: documents run directly on this machine, as ``awstoe run`` does.

Each process starts in its own session, so a timeout kills its whole process group (grandchildren
included). A reboot request is recorded, never carried out: the engine then re-runs the step, as
AWSTOE does when it resumes after a reboot.
"""

from __future__ import annotations

import codecs
import contextlib
import grp
import os
import platform
import pwd
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from kiln.documents.executor import OsInfo, OutputSink, ProcessResult

# After the main process exits, how long background children may keep our pipes open.
PIPE_GRACE = 1.0


class _Stream:
    """Decodes one pipe incrementally, keeps all text, and hands complete lines to a sink."""

    def __init__(self, sink: OutputSink | None) -> None:
        self.sink = sink
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.parts: list[str] = []
        self.pending = ""

    def feed(self, data: bytes, final: bool = False) -> None:
        text = self.decoder.decode(data, final=final)
        self.parts.append(text)
        if self.sink is None:
            return
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.sink(line)
        if final and self.pending:
            self.sink(self.pending)
            self.pending = ""

    def text(self) -> str:
        return "".join(self.parts)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class HostExecutor:
    """Runs processes on the host; ``host_path`` is the identity."""

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
        streams = {process.stdout: _Stream(on_stdout), process.stderr: _Stream(on_stderr)}
        try:
            timed_out = self._pump(process, streams, deadline)
        except BaseException:  # interrupted (Ctrl-C): leave nothing of the step running
            _kill_group(process.pid)
            process.wait()
            raise
        exit_code = process.wait()
        out, err = streams.values()
        return ProcessResult(exit_code, out.text(), err.text(), timed_out)

    def _pump(self, process: subprocess.Popen[bytes], streams: dict, deadline: float | None) -> bool:
        """Read both pipes until they close; kill the group at the deadline. True if it timed out."""
        selector = selectors.DefaultSelector()
        for pipe in streams:
            os.set_blocking(pipe.fileno(), False)
            selector.register(pipe, selectors.EVENT_READ)
        timed_out = False
        exited_at: float | None = None
        try:
            while selector.get_map():
                now = time.monotonic()
                if deadline is not None and now >= deadline and not timed_out:
                    _kill_group(process.pid)
                    timed_out = True
                if exited_at is None and process.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at > PIPE_GRACE:
                    break  # background children hold the pipes; stop reading, leave them be
                wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - now))
                for key, _ in selector.select(wait if not timed_out else 0.2):
                    data = key.fileobj.read(65536)
                    if data:
                        streams[key.fileobj].feed(data)
                    else:
                        streams[key.fileobj].feed(b"", final=True)
                        selector.unregister(key.fileobj)
                        key.fileobj.close()
        finally:
            for key in list(selector.get_map().values()):
                streams[key.fileobj].feed(b"", final=True)
                key.fileobj.close()
            selector.close()
        if timed_out:
            _kill_group(process.pid)
        return timed_out

    def host_path(self, path: str) -> Path:
        return Path(path)

    def reboot(self) -> None:
        """Record the request; the host itself is never restarted."""
        self.reboots.append(datetime.now(UTC))

    def os_info(self) -> OsInfo:
        fields: dict[str, str] = {}
        try:
            for line in Path("/etc/os-release").read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    fields[key.strip()] = value.strip().strip('"').strip("'")
        except OSError:
            pass
        return OsInfo(
            platform="Linux",
            id=fields.get("ID", ""),
            version_id=fields.get("VERSION_ID", ""),
            id_like=tuple(fields.get("ID_LIKE", "").split()),
            architecture=platform.machine() or "x86_64",
        )

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
