"""Process identity from /proc: a pid plus its start time names one process, even after pid reuse."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessId:
    """A pid and its start time (clock ticks after boot, field 22 of /proc/<pid>/stat)."""

    pid: int
    start_time: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The start time of ``pid``, or None when no such process exists (or it is a zombie)."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def identify(pid: int) -> ProcessId | None:
    started = start_time(pid)
    return None if started is None else ProcessId(pid, started)


def boot_id() -> str | None:
    """This boot of the host (None where the kernel does not say): it changes when the host restarts."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def current() -> ProcessId:
    """This process's identity."""
    found = identify(os.getpid())
    assert found is not None
    return found


def is_alive(pid: int | None, started: int | None) -> bool:
    """True when ``pid`` still runs and is the same process (same start time), not a reused pid."""
    if not pid:
        return False
    actual = start_time(pid)
    return actual is not None and (started is None or actual == started)


def pidns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except (FileNotFoundError, ProcessLookupError):
        return None


def pids_in_pidns(inode: int) -> list[int]:
    """Every live process (host pids) that is a member of the pid namespace ``inode``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/pid").st_ino == inode:
                found.append(int(entry))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def ns_pid(pid: int) -> int | None:
    """``pid`` as its own (innermost) pid namespace numbers it."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(x) for x in handle.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode("utf-8", "surrogateescape") for part in raw.split(b"\0")[:-1]]


def all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def with_argument(option: str, value: str) -> list[ProcessId]:
    """Processes whose command line holds ``option value`` (two arguments in a row)."""
    found = []
    for pid in all_pids():
        argv = cmdline(pid)
        if any(argv[i] == option and argv[i + 1] == value for i in range(len(argv) - 1)):
            identity = identify(pid)
            if identity is not None:
                found.append(identity)
    return found


def host_pid(inode: int, inner_pid: int) -> int | None:
    """The host pid of the process known as ``inner_pid`` inside pid namespace ``inode``."""
    for pid in pids_in_pidns(inode):
        if ns_pid(pid) == inner_pid:
            return pid
    return None


def send(pid: int, sig: int) -> None:
    """Signal a pid, ignoring a process that is already gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def wait_gone(processes: Iterable[ProcessId], timeout: float) -> bool:
    """Wait until none of ``processes`` is alive; False if some still are after ``timeout`` seconds.
    Woken by the kernel as each exits (a pidfd per process), not by polling: a process whose exit
    takes the kernel a while (one tearing down a network device) is seen gone at once."""
    pending = [p for p in processes if is_alive(p.pid, p.start_time)]
    deadline = time.monotonic() + timeout
    watched: dict[int, ProcessId] = {}
    try:
        for process in pending:
            try:
                fd = os.pidfd_open(process.pid)
            except ProcessLookupError:
                continue
            except OSError:  # no pidfds (Linux before 5.3): poll
                return _poll_gone(pending, deadline)
            watched[fd] = process
            if not is_alive(process.pid, process.start_time):  # gone, or the pid was reused, meanwhile
                del watched[fd]
                os.close(fd)
        exits = select.poll()
        for fd in watched:
            exits.register(fd, select.POLLIN)
        while watched:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            for fd, _ in exits.poll(remaining * 1000):
                exits.unregister(fd)
                del watched[fd]
                os.close(fd)
        return True
    finally:
        for fd in watched:
            os.close(fd)


def _poll_gone(pending: list[ProcessId], deadline: float) -> bool:
    delay = 0.001
    while True:
        pending = [p for p in pending if is_alive(p.pid, p.start_time)]
        if not pending:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def kill_and_wait(process: ProcessId, timeout: float = 10.0) -> bool:
    if is_alive(process.pid, process.start_time):
        send(process.pid, signal.SIGKILL)
    return wait_gone([process], timeout)
