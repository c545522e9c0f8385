"""Work inside a running VM instance's guest over SSH (:mod:`kiln.runtime.vm_ssh`): waiting until it
can be logged in to, shell scripts, files in and out as tar streams, and AWSTOE documents run by kiln's
own engine in the guest.

The engine runs with the guest's ``python3`` (every image kiln-bootable-linux makes has one: cloud-init
needs it; 3.11 or newer): kiln's ``documents`` package and the libraries it imports (pydantic with its
compiled core, PyYAML …) are copied in as one tar stream, the pure-Python ones from this host's
interpreter, the compiled core built for the guest's minor version (:mod:`kiln.runtime.guest_wheels`).
They go to ``/run/kiln-toe``, a tmpfs mounted for them (so nothing of kiln's reaches the guest's disk
and the image captured from it), together with :mod:`kiln.runtime.vm_toe_runner`, and are removed
again by :func:`remove_runner`.
"""

from __future__ import annotations

import functools
import io
import json
import shlex
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kiln.documents.executor import ProcessResult
from kiln.errors import KilnError
from kiln.runtime import guest_wheels, procs, records, vm_ssh, vm_toe_runner

GUEST_DIR = "/run/kiln-toe"
RUNNER = f"{GUEST_DIR}/kiln_toe_runner.py"
POLL_SECONDS = 3.0
UNMOUNT = f"umount {GUEST_DIR} 2>/dev/null; rm -rf {GUEST_DIR}"
NO_PYTHON = 90  # exit code of the guest Python query
# what the engine imports beyond the standard library (top-level module or package names)
LIBRARIES = ("pydantic", "pydantic_core", "annotated_types", "typing_inspection", "typing_extensions", "yaml")
KILN_FILES = ("__init__.py", "errors.py")


class GuestError(KilnError):
    """The guest could not do what was asked (no login, no python3, a script that failed)."""


def _alive(instance_id: str) -> bool:
    instance = records.get(instance_id)
    guest = instance.init
    return instance.state == records.RUNNING and guest is not None and procs.is_alive(guest.pid, guest.start_time)


def run_script(instance_id: str, script: str, *, timeout: float | None = None, stdin: bytes | None = None,
               on_stdout: Callable[[str], None] | None = None) -> ProcessResult:
    """``sh -c script`` as root in the guest."""
    return vm_ssh.exec_vm(instance_id, ["sh", "-c", script], timeout=timeout, stdin=stdin, on_stdout=on_stdout)


def wait_ready(instance_id: str, *, check: Callable[[], None], timeout: float) -> None:
    """Until the guest takes an SSH login and cloud-init has finished (its keys and users are set up and
    it no longer runs apt or writes files beside the build); ``check`` is called between attempts (it
    raises to give up: a cancelled build, a step out of time)."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        check()
        if not _alive(instance_id):
            raise GuestError(f"instance {instance_id} stopped while booting: see kiln instance console-output "
                             f"{instance_id}")
        result = run_script(instance_id, "true", timeout=60)
        if result.exit_code == 0:
            break
        last = result.stderr.strip()[-300:]
        if time.monotonic() > deadline:
            raise GuestError(f"instance {instance_id} took no SSH login within {timeout:g} seconds"
                             + (f" (last: {last})" if last else ""))
        time.sleep(POLL_SECONDS)
    remaining = max(deadline - time.monotonic(), 30.0)
    # exit status 2 is "done, with recoverable errors": done all the same
    run_script(instance_id, "if command -v cloud-init >/dev/null; then cloud-init status --wait >/dev/null; fi",
               timeout=remaining)


def _add_tree(archive: tarfile.TarFile, source: Path, name: str, *, compiled: bool = True) -> None:
    """``source`` (a file or a directory) into ``archive`` as ``name``; without extension modules
    unless ``compiled``."""
    if source.is_file():
        archive.add(source, name)
        return
    for path in sorted(source.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file() or (not compiled and path.suffix == ".so"):
            continue
        archive.add(path, f"{name}/{path.relative_to(source)}")


def _add_wheel(archive: tarfile.TarFile, wheel: Path, package: str) -> None:
    """The ``package`` directory of ``wheel`` into ``archive`` as ``lib/<package>``."""
    with zipfile.ZipFile(wheel) as unpacked:
        for entry in unpacked.infolist():
            if entry.is_dir() or not entry.filename.startswith(f"{package}/"):
                continue
            data = unpacked.read(entry)
            info = tarfile.TarInfo(f"lib/{entry.filename}")
            info.size, info.mode = len(data), 0o644
            info.mtime = int(time.mktime((*entry.date_time, 0, 0, -1)))
            archive.addfile(info, io.BytesIO(data))


def runner_bundle(minor: str | None = None) -> bytes:
    """The tar.gz a guest with CPython ``minor`` ("3.13"; this host's when None) gets:
    ``kiln_toe_runner.py`` and ``lib/`` (kiln's documents package, its libraries), built once per
    process and minor: the pure-Python files from what this interpreter imports, the compiled
    libraries from this interpreter too for its own minor, from their wheels for another
    (:mod:`kiln.runtime.guest_wheels`; optional extensions such as PyYAML's are left out)."""
    return _bundle(minor or python_version())


@functools.cache
def _bundle(minor: str) -> bytes:
    import importlib

    own = minor == python_version()
    wheels = {} if own else dict(zip(guest_wheels.COMPILED, guest_wheels.fetch(minor), strict=True))
    kiln_dir = Path(vm_toe_runner.__file__).resolve().parents[1]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        archive.add(vm_toe_runner.__file__, "kiln_toe_runner.py")
        for name in KILN_FILES:
            archive.add(kiln_dir / name, f"lib/kiln/{name}")
        _add_tree(archive, kiln_dir / "documents", "lib/kiln/documents")
        for library in LIBRARIES:
            if library in wheels:
                _add_wheel(archive, wheels[library], library)
                continue
            module = importlib.import_module(library)
            path = Path(module.__file__ or "")
            source = path.parent if path.name == "__init__.py" else path
            _add_tree(archive, source, f"lib/{source.name}", compiled=own)
    return buffer.getvalue()


def python_version() -> str:
    return guest_wheels.host_minor()


def _minor(text: str) -> tuple[int, int] | None:
    major, dot, minor = text.partition(".")
    return (int(major), int(minor)) if dot and major.isdigit() and minor.isdigit() else None


def guest_python(instance_id: str, *, run: Callable[..., ProcessResult] = run_script) -> str:
    """The guest's CPython minor version ("3.13"), one kiln's AWSTOE runner supports (:class:`GuestError`
    otherwise). ``run`` runs a shell script in the guest (:func:`run_script`)."""
    result = run(instance_id,
                 f"command -v python3 >/dev/null || exit {NO_PYTHON}; "
                 "exec python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'", timeout=120)
    if result.exit_code == NO_PYTHON:
        raise GuestError(f"instance {instance_id} has no python3, which kiln runs AWSTOE components in a VM "
                         "with", hint="build its image with the kiln-bootable-linux component (cloud-init "
                         "brings python3), or install python3 in it")
    found = result.stdout.strip()
    version = _minor(found)
    if result.exit_code != 0 or version is None:
        raise GuestError(f"asking instance {instance_id} for its Python version failed (exit {result.exit_code}): "
                         f"{(result.stderr.strip() or found)[-300:]}")
    lowest = ".".join(map(str, guest_wheels.MIN_PYTHON))
    if version < guest_wheels.MIN_PYTHON:
        raise GuestError(f"instance {instance_id} has Python {found}, kiln's AWSTOE runner needs Python {lowest} "
                         "or newer in the guest")
    if found not in guest_wheels.GUEST_PYTHONS and found != python_version():
        raise GuestError(f"instance {instance_id} has Python {found}, kiln's AWSTOE runner supports Python "
                         f"{lowest} to {guest_wheels.GUEST_PYTHONS[-1]} in the guest")
    return found


def install_runner(instance_id: str, *, run: Callable[..., ProcessResult] = run_script) -> None:
    """Copy the runner bundle for the guest's python3 (:func:`guest_python`) into its ``/run/kiln-toe``
    (``run`` as for :func:`guest_python`)."""
    bundle = runner_bundle(guest_python(instance_id, run=run))
    script = (
        # a tmpfs of its own: /run is mounted noexec, and the engine's compiled libraries must map
        f"{UNMOUNT}; mkdir -p {GUEST_DIR} && mount -t tmpfs -o mode=0700 kiln-toe {GUEST_DIR} && "
        f"tar -xzf - -C {GUEST_DIR}"
    )
    result = run(instance_id, script, stdin=bundle, timeout=600)
    if result.exit_code != 0:
        raise GuestError(f"copying kiln's AWSTOE runner into instance {instance_id} failed (exit "
                         f"{result.exit_code}): {result.stderr.strip()[-300:]}")


def remove_runner(instance_id: str) -> None:
    run_script(instance_id, UNMOUNT, timeout=120)


def _ssh_bytes(instance_id: str, remote: str, *, timeout: float) -> bytes:
    """The stdout of ``remote`` in the guest, as bytes (a tar stream)."""
    command = vm_ssh.ssh_argv(records.get(instance_id), remote)
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise GuestError(f"reading files from instance {instance_id} took more than {timeout:g} seconds") from None
    if done.returncode != 0:
        raise GuestError(f"reading files from instance {instance_id} failed (exit {done.returncode}): "
                         f"{done.stderr.decode(errors='replace').strip()[-300:]}")
    return done.stdout


def fetch_paths(instance_id: str, paths: Iterable[str], dest: Path, *, timeout: float = 600) -> Path:
    """Copy the guest's ``paths`` (absolute; those that do not exist are left out) into ``dest`` under
    the same relative paths; symbolic links stay links."""
    names = " ".join(shlex.quote(path.lstrip("/")) for path in paths)
    remote = (f"cd / && for p in {names}; do if [ -e \"$p\" ] || [ -L \"$p\" ]; then printf '%s\\n' \"$p\"; fi; "
              "done | tar -cf - -T -")
    return _extract(_ssh_bytes(instance_id, remote, timeout=timeout), dest)


def fetch_dir(instance_id: str, guest_dir: str, dest: Path, *, timeout: float = 600) -> Path:
    """Copy the guest's directory ``guest_dir`` (its contents) into ``dest``."""
    remote = f"tar -C {shlex.quote(guest_dir)} -cf - ."
    return _extract(_ssh_bytes(instance_id, remote, timeout=timeout), dest)


def _inside(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's ``data`` filter (inside ``dest``, no devices, no owners of the guest), leaving out
    what it refuses (an absolute link) instead of failing on it."""
    try:
        return tarfile.data_filter(member, dest)
    except tarfile.FilterError:
        return None


def _extract(stream: bytes, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(stream), mode="r:") as archive:
        archive.extractall(dest, filter=_inside)
    return dest


@dataclass(frozen=True)
class GuestRun:
    ok: bool
    message: str
    timed_out: bool = False
    reboots: int = 0  # how often the guest was rebooted for the document's steps


def boot_id(instance_id: str) -> str:
    """The guest kernel's boot id (a new one each boot)."""
    done = run_script(instance_id, f"cat {vm_toe_runner.BOOT_ID}", timeout=60)
    if done.exit_code != 0:
        raise GuestError(f"could not read the boot id of instance {instance_id}: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def reboot_guest(instance_id: str, before: str, *, check: Callable[[], None], timeout: float) -> None:
    """Reboot the guest for a step that asked (EC2's RebootInstances: QMP ``system_reset``, the runner
    synced the disks first) and wait until it is back, a new boot (``before`` was the old boot id),
    with kiln's runner installed again (it lived on a tmpfs)."""
    from kiln.runtime import instances

    instances.reboot(instance_id)
    deadline = time.monotonic() + timeout
    wait_ready(instance_id, check=check, timeout=timeout)
    now = boot_id(instance_id)
    if before and now == before:
        raise GuestError(f"instance {instance_id} did not reboot (boot id {now} unchanged)")
    install_runner(instance_id)
    if time.monotonic() > deadline:
        raise GuestError(f"instance {instance_id} took more than {timeout:g} seconds to reboot")


def step_named(key: list[object]) -> str:
    """A step's resume key (``kiln.runtime.vm_toe_runner``) for people: ``build/Step``, or in a nested
    document ``build/Inner in /path/doc.yaml (from step build/Outer)`` (``, run 2``: its second)."""
    parts = [str(part) for part in key]
    if len(parts) <= 2:
        return "/".join(parts)
    phase, step, ordinal, document, rest = parts[0], parts[1], parts[2], parts[3], parts[4:]
    again = f", run {ordinal}" if ordinal != "1" else ""
    return f"{step_named(list(rest))} in {document} (from step {phase}/{step}{again})"


def run_document(
    instance_id: str,
    document: str,
    *,
    name: str,
    phases: Sequence[str],
    parameters: Mapping[str, str],
    log_dir: Path,
    working_directory: str,
    timeout: float | None,
    progress: Callable[[str], None] = lambda line: None,
    check: Callable[[], None] = lambda: None,
) -> GuestRun:
    """Run one AWSTOE document in the guest (:func:`install_runner` first) through kiln's engine there;
    its progress lines go to ``progress`` as they come, its ``TOE_…`` log folders are copied into
    ``log_dir`` afterwards (also when it failed). A step asking for a reboot gets one
    (:func:`reboot_guest`) and the document resumes after it (:mod:`kiln.runtime.vm_toe_runner`);
    ``check`` is called while the guest reboots (it raises to give up)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    resume: dict[str, object] | None = None
    reboots = 0
    while True:
        left = None if deadline is None else max(deadline - time.monotonic(), 1.0)
        outcome = _run_once(instance_id, document, name=name, phases=phases, parameters=parameters,
                            log_dir=log_dir, working_directory=working_directory, timeout=left,
                            progress=progress, resume=resume)
        if isinstance(outcome, GuestRun):
            return GuestRun(outcome.ok, outcome.message, outcome.timed_out, reboots)
        resume, reboots = outcome, reboots + 1
        at = step_named(list(outcome.get("at", [])))  # type: ignore[call-overload]
        progress(f"    {instance_id}: rebooting for step {at}, then resuming the document")
        left = None if deadline is None else max(deadline - time.monotonic(), 1.0)
        reboot_guest(instance_id, str(outcome.get("boot_id", "")), check=check,
                     timeout=left if left is not None else 1800.0)
        # the boot may have emptied /tmp, where working directories usually are
        run_script(instance_id, f"mkdir -p {shlex.quote(working_directory)}", timeout=120)


def _run_once(
    instance_id: str,
    document: str,
    *,
    name: str,
    phases: Sequence[str],
    parameters: Mapping[str, str],
    log_dir: Path,
    working_directory: str,
    timeout: float | None,
    progress: Callable[[str], None],
    resume: dict[str, object] | None,
) -> GuestRun | dict[str, object]:
    """One run of the runner: its outcome, or the state to resume from after the reboot it asks for."""
    guest_logs = f"{GUEST_DIR}/logs/{name}"
    request = {"document": document, "name": name, "phases": list(phases), "parameters": dict(parameters),
               "log_dir": guest_logs, "cwd": working_directory, "resume": resume}
    request_path = f"{GUEST_DIR}/requests/{name}.json"
    script = (f"mkdir -p {GUEST_DIR}/requests && cat > {shlex.quote(request_path)} && "
              f"exec python3 -S -E {RUNNER} {shlex.quote(request_path)}")

    def lines(block: str) -> None:
        for line in block.splitlines():
            progress(line)

    result = run_script(instance_id, script, stdin=json.dumps(request).encode(), timeout=timeout, on_stdout=lines)
    if result.timed_out:
        return GuestRun(False, f"timed out after {timeout:g} seconds", timed_out=True)
    if result.exit_code == 0:
        fetch_dir(instance_id, guest_logs, log_dir)
    outcome_file = log_dir / vm_toe_runner.RESULT_FILE
    if result.exit_code != 0 or not outcome_file.is_file():
        return GuestRun(False, f"kiln's AWSTOE runner in instance {instance_id} ended with exit status "
                               f"{result.exit_code}: {result.stderr.strip()[-400:]}")
    outcome = json.loads(outcome_file.read_text())
    outcome_file.unlink()
    if outcome.get("reboot"):
        return dict(outcome["reboot"])
    return GuestRun(bool(outcome["ok"]), str(outcome["message"]))
