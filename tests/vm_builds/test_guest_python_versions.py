"""kiln's AWSTOE runner in a guest whose python3 is not this host's minor version, without a VM: the
guest is a root file system run under bubblewrap, and the runner is installed and run there exactly as
:mod:`kiln.runtime.vm_guest_exec` does over SSH (same scripts, same stdin).

- Debian 13 "trixie" (mmdebstrap minbase + python3: CPython 3.13, network) gets the bundle for 3.13
  (pydantic_core from its 3.13 wheel) and runs a document with ExecuteBash, CreateFile and an input
  pydantic validates.
- A guest below the oldest CPython kiln.documents runs on gets one clear error and nothing installed.
  No real older CPython is cheap to have here (Debian bookworm, this host, has 3.11; bullseye's 3.9
  would be a second bootstrap), so that guest is the busybox tree with a ``python3`` that says 3.10.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import needs_root

from kiln.documents.executor import ProcessResult
from kiln.runtime import guest_wheels, vm_guest_exec, vm_toe_runner
from kiln.store.bootstrap import bootstrap_tarball

pytestmark = needs_root()

DOCUMENT = """
name: guest-python
schemaVersion: 1.0
parameters:
  - Dir:
      type: string
phases:
  - name: build
    steps:
      - name: Version
        action: ExecuteBash
        inputs:
          commands:
            - mkdir -p {{ Dir }}
            - python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' > {{ Dir }}/version.txt
      - name: Create
        action: CreateFile
        inputs:
          - path: "{{ Dir }}/created.txt"
            content: made in the guest
            permissions: 640
            overwrite: "yes"
"""
BAD_INPUT = DOCUMENT.replace('overwrite: "yes"', "overwrite: perhaps")


class Guest:
    """A root file system standing in for a VM guest: ``run`` is :func:`vm_guest_exec.run_script`'s
    shape (``sh -c script`` as root), each call a fresh bubblewrap sandbox over the tree."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, bytes | None]] = []

    def run(self, instance_id: str, script: str, *, timeout: float | None = None,
            stdin: bytes | None = None) -> ProcessResult:
        self.calls.append((script, stdin))
        command = ["bwrap", "--bind", str(self.root), "/", "--proc", "/proc", "--dev", "/dev",
                   "--unshare-pid", "--unshare-net", "--die-with-parent", "--cap-add", "CAP_SYS_ADMIN",
                   "--clearenv", "--setenv", "PATH", "/usr/sbin:/usr/bin:/sbin:/bin", "--chdir", "/",
                   "sh", "-c", script]
        done = subprocess.run(command, input=stdin or b"", capture_output=True, timeout=timeout or 300, check=False)
        return ProcessResult(done.returncode, done.stdout.decode(errors="replace"),
                             done.stderr.decode(errors="replace"))

    def run_document(self, document: str, name: str, directory: str) -> dict[str, object]:
        """The runner on ``document`` as :func:`vm_guest_exec._run_once` starts it; its outcome."""
        logs = f"{vm_guest_exec.GUEST_DIR}/logs/{name}"
        request = {"document": document, "name": name, "phases": ["build"], "parameters": {"Dir": directory},
                   "log_dir": logs, "cwd": "/tmp", "resume": None}
        request_path = f"{vm_guest_exec.GUEST_DIR}/requests/{name}.json"
        done = self.run("i-guest", f"mkdir -p {vm_guest_exec.GUEST_DIR}/requests && cat > {request_path} && "
                                   f"exec python3 -S -E {vm_guest_exec.RUNNER} {request_path}",
                        stdin=json.dumps(request).encode())
        assert done.exit_code == 0, done.stderr
        result = self.root / logs.lstrip("/") / vm_toe_runner.RESULT_FILE
        return dict(json.loads(result.read_text()))


@pytest.fixture(scope="module")
def trixie(tmp_path_factory: pytest.TempPathFactory, bootstrap_cache: Path) -> Path:
    """Debian 13 with python3, unpacked from the session's cached mmdebstrap tarball."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KILN_BOOTSTRAP_CACHE", str(bootstrap_cache))
        tarball = bootstrap_tarball("debian:trixie", include=["python3"])
    root = tmp_path_factory.mktemp("trixie")
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(root), "--numeric-owner"], check=True)
    return root


@pytest.mark.network
@pytest.mark.slow
def test_a_debian_13_guest_runs_documents_with_its_python_3_13(trixie: Path) -> None:
    guest = Guest(trixie)
    assert vm_guest_exec.guest_python("i-guest", run=guest.run) == "3.13"
    assert vm_guest_exec.python_version() != "3.13"  # else this would test nothing new
    vm_guest_exec.install_runner("i-guest", run=guest.run)
    # what the guest was sent: the 3.13 bundle, pydantic_core built for 3.13, no extension of this host's
    (_, sent), = [call for call in guest.calls if "tar -xzf" in call[0]]
    assert sent == vm_guest_exec.runner_bundle("3.13")
    with tarfile.open(fileobj=io.BytesIO(sent), mode="r:gz") as archive:
        compiled = [name for name in archive.getnames() if name.endswith(".so")]
        assert compiled == ["lib/pydantic_core/_pydantic_core.cpython-313-x86_64-linux-gnu.so"], compiled
        # the install above ran in a sandbox of its own (its tmpfs is gone): the same files, put in place
        archive.extractall(trixie / vm_guest_exec.GUEST_DIR.lstrip("/"), filter="data")
    assert guest_wheels.wheel("pydantic_core", "3.13") is not None

    outcome = guest.run_document(DOCUMENT, "guest-python-1.0.0", "/root/made")
    assert outcome == {"ok": True, "message": ""}, outcome
    made = trixie / "root" / "made"
    assert (made / "version.txt").read_text() == "3.13\n"
    assert (made / "created.txt").read_text() == "made in the guest"
    assert (made / "created.txt").stat().st_mode & 0o777 == 0o640

    # pydantic_core's validation errors work there too: the step fails naming the input
    outcome = guest.run_document(BAD_INPUT, "guest-python-bad-1.0.0", "/root/bad")
    assert outcome["ok"] is False and "overwrite" in str(outcome["message"]), outcome
    assert not (trixie / "root" / "bad").exists()


def shimmed_guest(root: Path, version: str) -> Guest:
    """The busybox tree with a ``python3`` that answers ``version``."""
    shim = root / "usr" / "bin" / "python3"
    shim.parent.mkdir(parents=True, exist_ok=True)
    shim.write_text(f"#!/bin/sh\necho {version}\n")
    shim.chmod(0o755)
    return Guest(root)


@pytest.mark.parametrize(("version", "message"), [
    ("3.10", "has Python 3.10, kiln's AWSTOE runner needs Python 3.11 or newer in the guest"),
    ("3.99", "has Python 3.99, kiln's AWSTOE runner supports Python 3.11 to 3.14 in the guest"),
])
def test_a_guest_python_the_runner_cannot_use_gets_one_clear_error_and_nothing_installed(
        busybox_copy: Callable[[str], Path], version: str, message: str) -> None:
    guest = shimmed_guest(busybox_copy("shimmed"), version)
    with pytest.raises(vm_guest_exec.GuestError) as raised:
        vm_guest_exec.install_runner("i-0123456789abcdef0", run=guest.run)
    assert str(raised.value) == f"instance i-0123456789abcdef0 {message}"
    assert len(guest.calls) == 1  # the question only: no bundle sent
    assert not (guest.root / vm_guest_exec.GUEST_DIR.lstrip("/")).exists()


def test_a_guest_without_python3_is_told_so(busybox_copy: Callable[[str], Path]) -> None:
    guest = Guest(busybox_copy("no-python"))
    with pytest.raises(vm_guest_exec.GuestError, match=r"^instance i-guest has no python3, which kiln runs"):
        vm_guest_exec.install_runner("i-guest", run=guest.run)
    assert len(guest.calls) == 1


def test_the_bundle_for_another_minor_takes_the_compiled_core_from_its_wheel() -> None:
    """Only pydantic_core comes from the wheel; PyYAML's optional C extension stays out."""
    own = vm_guest_exec.runner_bundle()
    other = "3.12" if vm_guest_exec.python_version() != "3.12" else "3.13"
    with tarfile.open(fileobj=io.BytesIO(own), mode="r:gz") as archive:
        own_names = set(archive.getnames())
    with tarfile.open(fileobj=io.BytesIO(vm_guest_exec.runner_bundle(other)), mode="r:gz") as archive:
        names = set(archive.getnames())
    tag = other.replace(".", "")
    assert {name for name in names if name.endswith(".so")} == {
        f"lib/pydantic_core/_pydantic_core.cpython-{tag}-x86_64-linux-gnu.so"}
    assert {name for name in own_names - names if not name.endswith(".so")} == set()
    assert "lib/yaml/__init__.py" in names and "lib/kiln/documents/engine.py" in names
