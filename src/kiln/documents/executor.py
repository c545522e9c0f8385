"""What a document runs against: the host, or an instance. Actions reach the system only through this.

An executor runs processes and maps target paths to host paths. The host executor maps a path to
itself; an instance executor maps ``/etc/x`` to the same file inside the instance's root volume
(resolved with :func:`kiln.paths.resolve_in_root`, so links never lead out of the instance).
"""

from __future__ import annotations

import platform
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

# Takes a block of one or more complete lines, ``\n``-separated (a line longer than the pump's limit may
# arrive in pieces); the block ends with ``\n`` when the pump keeps line endings.
OutputSink = Callable[[str], None]


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False


@dataclass(frozen=True)
class OsInfo:
    """From the target's /etc/os-release: ``ID`` (debian), ``VERSION_ID`` (12), ``ID_LIKE`` list."""

    platform: str = "Linux"
    id: str = ""
    version_id: str = ""
    id_like: tuple[str, ...] = field(default_factory=tuple)
    architecture: str = "x86_64"


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines of os-release(5), with shell quoting removed."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError:
            parts = [raw]
        values[key.strip()] = parts[0] if parts else ""
    return values


def os_info_from_release(text: str) -> OsInfo:
    """The target's ``OsInfo`` from the text of its os-release file (empty text: unknown OS)."""
    values = parse_os_release(text)
    return OsInfo(
        platform="Linux",
        id=values.get("ID", ""),
        version_id=values.get("VERSION_ID", ""),
        id_like=tuple(values.get("ID_LIKE", "").split()),
        architecture=platform.machine() or "x86_64",
    )


@runtime_checkable
class Executor(Protocol):
    """The narrow interface every action uses to touch the target system. An executor may also have
    a ``network`` attribute (``kiln.documents.network.NetworkPolicy``) for the network actions; one
    without gets no network."""

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
        """Run argv on the target; on timeout kill its whole process group and set ``timed_out``."""
        ...

    def host_path(self, path: str) -> Path:
        """The host path of the target's absolute ``path`` (which may not exist yet)."""
        ...

    def reboot(self) -> None:
        """Restart the target (an instance restarts; the host only records it, see the host executor)."""
        ...

    def os_info(self) -> OsInfo: ...

    def user_id(self, name: str) -> int:
        """Resolve a user name (or numeric string) against the target's /etc/passwd."""
        ...

    def group_id(self, name: str) -> int:
        """Resolve a group name (or numeric string) against the target's /etc/group."""
        ...
