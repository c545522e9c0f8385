"""The document executor for an instance: actions run inside it and reach its files from the host."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from kiln.documents.executor import OsInfo, OutputSink, ProcessResult, os_info_from_release
from kiln.documents.network import NetworkPolicy
from kiln.ec2_errors import IncorrectInstanceState
from kiln.errors import InvalidInput
from kiln.paths import resolve_in_root
from kiln.runtime import instances, records
from kiln.runtime.exec import exec_in


class InstanceExecutor:
    """Runs document steps in instance ``instance_id`` (which must be running).

    ``network`` governs the network actions, which run on the host side: by default it follows the
    instance's own network (none: nothing; host: the network, host-local addresses as launched), with no
    AWS credentials; the build passes the policy its infrastructure configuration asks for."""

    def __init__(self, instance_id: str, *, network: NetworkPolicy | None = None) -> None:
        self.instance_id = instance_id
        self._network = network
        self._root: Path | None = None  # the mounted root, once the database said it runs

    @property
    def network(self) -> NetworkPolicy:
        if self._network is None:
            instance = records.get(self.instance_id)
            self._network = NetworkPolicy(reachable=instance.network != "none", host_local=instance.host_local_network)
        return self._network

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
        return exec_in(
            self.instance_id,
            argv,
            env=env,
            cwd=cwd,
            timeout=timeout,
            stdin=stdin,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
        )

    def root(self) -> Path:
        """The instance's root as the host sees it (the mounted overlay; only while running).

        Asked once per path a document touches: after the database said the instance runs, its root
        still being mounted says so too (stopping unmounts it), without a database round trip."""
        if self._root is not None and os.path.ismount(self._root):
            return self._root
        instance = records.get(self.instance_id)
        if instance.state != records.RUNNING:
            raise IncorrectInstanceState(f"instance {self.instance_id} is {instance.state}, not running")
        self._root = instance.merged_dir
        return instance.merged_dir

    def host_path(self, path: str) -> Path:
        return resolve_in_root(self.root(), path)

    def reboot(self) -> None:
        instances.reboot(self.instance_id)

    def _read(self, *candidates: str) -> str:
        for candidate in candidates:
            try:
                return self.host_path(candidate).read_text(errors="replace")
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
        return ""

    def os_info(self) -> OsInfo:
        return os_info_from_release(self._read("/etc/os-release", "/usr/lib/os-release"))

    def _lookup(self, database: str, name: str) -> int:
        if name.isdigit():
            return int(name)
        for line in self._read(database).splitlines():
            fields = line.split(":")
            if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
                return int(fields[2])
        kind = "user" if database.endswith("passwd") else "group"
        raise InvalidInput(f"no {kind} named {name!r} in the instance's {database}", location=kind)

    def user_id(self, name: str) -> int:
        return self._lookup("/etc/passwd", name)

    def group_id(self, name: str) -> int:
        return self._lookup("/etc/group", name)
