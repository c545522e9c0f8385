"""Run a command inside a running instance: util-linux ``nsenter`` into its namespaces and root.

The command runs as root in the instance's mount, uts, ipc, net and pid namespaces, with the
instance's root, a clean environment and the sandbox's capabilities (the same bounding set, less
what the instance's network withholds: see ``kiln.runtime.netns``), and
joins the instance's cgroups. ``nsenter`` is started
in a new session on the host, so it and everything the command forks (down to a backgrounded
grandchild) share one process group: a timeout kills that group from the host. A service that
detaches into its own session (``setsid``, a daemon) leaves the group and keeps running until the
instance stops.

Output is streamed to the sinks line by line (each line with its ``\\n``; a last unterminated line
as is) and also collected in the result.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO

from kiln.documents.executor import OutputSink, ProcessResult
from kiln.documents.process_output import OutputCapture, pump
from kiln.ec2_errors import IncorrectInstanceState
from kiln.runtime import cgroups, netns, procs, records
from kiln.runtime.sandbox import DEFAULT_PATH, nsenter_path, without_host_capabilities

TIMEOUT_EXIT_CODE = 124  # as timeout(1)
DRAIN_AFTER_EXIT = 0.2  # seconds to wait for EOF once the command exited (a daemon may hold the pipe)


def nsenter_argv(
    init_pid: int, argv: Sequence[str], *, cwd: str | None = None, withheld: Sequence[str] = ()
) -> list[str]:
    """``nsenter`` into the instance, without the capabilities the sandbox lacks either."""
    return without_host_capabilities([
        nsenter_path(), "--target", str(init_pid),
        "--mount", "--uts", "--ipc", "--net", "--pid", "--root", f"--wdns={cwd or '/'}",
        "--", *argv,
    ], withheld)  # fmt: skip


def _feed_stdin(pipe: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(OSError), pipe:
        pipe.write(data)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def run_in_namespaces(
    init_pid: int,
    argv: Sequence[str],
    *,
    groups: Sequence[object] = (),
    withheld: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    stdin: bytes | None = None,
    on_stdout: OutputSink | None = None,
    on_stderr: OutputSink | None = None,
) -> ProcessResult:
    """Run ``argv`` in the namespaces of ``init_pid``; see the module docstring."""
    if not argv:
        raise ValueError("empty command")
    environment = {"PATH": DEFAULT_PATH, "HOME": "/root", "TERM": "dumb", **(env or {})}
    command = cgroups.join_argv([str(g) for g in groups], nsenter_argv(init_pid, argv, cwd=cwd, withheld=withheld))
    return run_captured(command, env=environment, timeout=timeout, stdin=stdin, on_stdout=on_stdout,
                        on_stderr=on_stderr)


def run_captured(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    stdin: bytes | None = None,
    on_stdout: OutputSink | None = None,
    on_stderr: OutputSink | None = None,
) -> ProcessResult:
    """Run a host command in a session of its own, output streamed to the sinks and collected; a
    timeout kills its whole process group (exit code 124)."""
    process = subprocess.Popen(
        list(command),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    assert process.stdout is not None and process.stderr is not None
    out = OutputCapture(on_stdout, line_endings=True)
    err = OutputCapture(on_stderr, line_endings=True)
    if stdin is not None:
        threading.Thread(target=_feed_stdin, args=(process.stdin, stdin), daemon=True).start()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        timed_out = pump(
            process,
            {process.stdout.fileno(): out, process.stderr.fileno(): err},
            deadline=deadline,
            kill=lambda: _kill_group(process),
            grace=DRAIN_AFTER_EXIT,
        )
        returncode = process.wait()
    except BaseException:
        _kill_group(process)
        process.wait()
        raise
    finally:
        process.stdout.close()
        process.stderr.close()
    exit_code = TIMEOUT_EXIT_CODE if timed_out else 128 - returncode if returncode < 0 else returncode
    return ProcessResult(exit_code=exit_code, stdout=out.text(), stderr=err.text(), timed_out=timed_out)


def exec_in(
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
    """Run ``argv`` inside running instance ``instance_id``; the exit code is the command's."""
    instance = records.get(instance_id)
    init = instance.init
    if instance.state != records.RUNNING or init is None or not procs.is_alive(init.pid, init.start_time):
        raise IncorrectInstanceState(
            f"instance {instance_id} is not running (state {instance.state})",
            hint=f"kiln instance start {instance_id}",
        )
    result = run_in_namespaces(
        init.pid,
        argv,
        groups=instance.cgroups,
        withheld=netns.withheld_capabilities(instance.network, instance.host_local_network),
        env=env,
        cwd=cwd,
        timeout=timeout,
        stdin=stdin,
        on_stdout=on_stdout,
        on_stderr=on_stderr,
    )
    if result.exit_code == 1 and not procs.is_alive(init.pid, init.start_time):
        # nsenter could not enter: the instance died meanwhile (stopped, OOM-killed, ...).
        raise IncorrectInstanceState(f"instance {instance_id} stopped running: {result.stderr.strip()}")
    return result
