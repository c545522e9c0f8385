"""UpdateOS: install available package updates on the target with its own package manager.

The manager is chosen from the target's os-release (``ID``/``ID_LIKE``) among the binaries that
exist in it: apt-get, dnf, yum, zypper or apk. ``include`` limits the update to those packages;
``exclude`` keeps packages at their version for this update only (apt holds, dnf/yum ``--exclude``,
zypper locks, apk world pins); holds, locks and pins added here are removed afterwards, and ones the
target already had are left alone.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from kiln.documents.actions.base import Action, ActionFailed, ActionResult, Inputs, StepContext, register
from kiln.documents.executor import ProcessResult

MANAGERS = ("apt-get", "dnf", "yum", "zypper", "apk")
FAMILIES = {
    "debian": ("apt-get",), "ubuntu": ("apt-get",),
    "fedora": ("dnf", "yum"), "rhel": ("dnf", "yum"), "centos": ("dnf", "yum"), "amzn": ("dnf", "yum"),
    "suse": ("zypper",), "sles": ("zypper",), "opensuse": ("zypper",), "opensuse-leap": ("zypper",),
    "opensuse-tumbleweed": ("zypper",), "alpine": ("apk",),
}
BIN_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
DPKG_OPTIONS = ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")
ZYPPER_LOCKS = "/etc/zypp/locks"
ZYPPER_REBOOT_NEEDED, ZYPPER_RERUN = 102, 103
APK_WORLD, APK_INSTALLED = "/etc/apk/world", "/lib/apk/db/installed"
# Package names (globs allowed); never an option, never shell syntax.
PACKAGE = re.compile(r"[A-Za-z0-9_*?\[][A-Za-z0-9_.+:~@*?\[\]/=-]*")


class UpdateOSInputs(Inputs):
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)

    @field_validator("include", "exclude")
    @classmethod
    def _package_names(cls, values: list[str], info: ValidationInfo) -> list[str]:
        # Windows takes update ids (KB1234567) and title patterns ('*Security Update*'); a document
        # checked for any platform (None) gets the Windows rule, its run the instance's
        windows = (info.context or {}).get("platform", "linux") in ("windows", None)
        for value in values:
            if windows and value.strip() and value.isprintable():
                continue
            if not PACKAGE.fullmatch(value):
                raise ValueError(f"'{value}' is not a package name")
        return values


def find_binary(context: StepContext, name: str) -> str | None:
    """The target path of an executable ``name`` in the usual bin folders, or None."""
    for folder in BIN_DIRS:
        path = f"{folder}/{name}"
        host = context.executor.host_path(path)
        if host.is_file() and host.stat().st_mode & 0o111:
            return path
    return None


def choose_manager(context: StepContext) -> tuple[str, str]:
    """(manager name, its target path): the OS family's manager first, then any that exists."""
    info = context.executor.os_info()
    preferred: list[str] = []
    for family in (info.id, *info.id_like):
        preferred.extend(FAMILIES.get(family.lower(), ()))
    for name in dict.fromkeys([*preferred, *MANAGERS]):
        path = find_binary(context, name)
        if path is not None:
            return name, path
    raise ActionFailed(f"no supported package manager ({', '.join(MANAGERS)}) found on the target")


class _Runner:
    """Runs the manager's commands with the step's remaining time, streaming output to the console."""

    def __init__(self, context: StepContext, env: dict[str, str] | None = None) -> None:
        import time

        self.context, self.env, self._clock = context, env, time.monotonic
        self.deadline = None if context.timeout is None else time.monotonic() + context.timeout

    def __call__(self, argv: Sequence[str], ok: Sequence[int] = (0,)) -> ProcessResult:
        remaining = None if self.deadline is None else self.deadline - self._clock()
        if remaining is not None and remaining <= 0:
            raise ActionFailed(f"step timed out after {self.context.timeout:g} seconds")
        self.context.console("+ " + " ".join(argv))
        try:
            result = self.context.executor.run(list(argv), env=self.env, timeout=remaining,
                                               on_stdout=self.context.console, on_stderr=self.context.console)
        except OSError as error:
            raise ActionFailed(f"cannot run {argv[0]}: {error.strerror or error}") from None
        if result.timed_out:
            raise ActionFailed(f"step timed out after {self.context.timeout:g} seconds; its processes were killed")
        if result.exit_code not in ok:
            detail = result.stderr.strip().splitlines()[-1:] or [""]
            command = " ".join([posixpath.basename(argv[0]), *argv[1:]])
            raise ActionFailed(f"{command}: exit status {result.exit_code}"
                               + (f": {detail[0]}" if detail[0] else ""))
        return result


def _with_cleanup(body: Callable[[], None], cleanup: Callable[[], None]) -> None:
    """Run body then cleanup; a cleanup failure is reported unless body already failed."""
    try:
        body()
    except ActionFailed as error:
        try:
            cleanup()
        except ActionFailed as also:
            raise ActionFailed(f"{error}; then {also}") from None
        raise
    cleanup()


def _apt(context: StepContext, path: str, targets: list[str], exclude: list[str]) -> None:
    run = _Runner(context, APT_ENV)
    mark = find_binary(context, "apt-mark")
    if exclude and mark is None:
        raise ActionFailed("apt-mark is missing on the target; cannot exclude packages")
    run([path, "update"])
    held = set(run([mark, "showhold"]).stdout.split()) if exclude and mark else set()
    hold = [name for name in exclude if name not in held]
    if hold and mark:
        run([mark, "hold", *hold])

    def upgrade() -> None:
        if targets:
            run([path, "install", "-y", "--only-upgrade", *DPKG_OPTIONS, *targets])
        else:
            run([path, "-y", *DPKG_OPTIONS, "upgrade"])

    _with_cleanup(upgrade, lambda: run([mark, "unhold", *hold]) if hold and mark else None)


def _dnf(context: StepContext, path: str, targets: list[str], exclude: list[str]) -> None:
    _Runner(context)([path, "-y", "update", *(f"--exclude={name}" for name in exclude), *targets])


def _zypper_locked(context: StepContext) -> set[str]:
    try:
        text = context.executor.host_path(ZYPPER_LOCKS).read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return set()
    return {line.partition(":")[2].strip() for line in text.splitlines() if line.startswith("solvable_name:")}


def _zypper(context: StepContext, path: str, targets: list[str], exclude: list[str]) -> None:
    run = _Runner(context)
    base = [path, "--non-interactive"]
    run([*base, "refresh"])
    locked = _zypper_locked(context)
    lock = [name for name in exclude if name not in locked]
    if lock:
        run([*base, "addlock", *lock])

    def update() -> None:
        argv = [*base, "update", "--auto-agree-with-licenses", *targets]
        # 103: zypper updated itself and must run again for the rest
        if run(argv, ok=(0, ZYPPER_REBOOT_NEEDED, ZYPPER_RERUN)).exit_code == ZYPPER_RERUN:
            run(argv, ok=(0, ZYPPER_REBOOT_NEEDED))

    _with_cleanup(update, lambda: run([*base, "removelock", *lock]) if lock else None)


def _apk_installed(context: StepContext) -> dict[str, str]:
    """Installed package → version, from apk's database (``P:`` and ``V:`` lines)."""
    versions: dict[str, str] = {}
    try:
        text = context.executor.host_path(APK_INSTALLED).read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return versions
    name = ""
    for line in text.splitlines():
        if line.startswith("P:"):
            name = line[2:]
        elif line.startswith("V:") and name:
            versions[name] = line[2:]
        elif not line:
            name = ""
    return versions


def _apk(context: StepContext, path: str, targets: list[str], exclude: list[str]) -> None:
    run = _Runner(context)
    run([path, "update"])
    world: Path = context.executor.host_path(APK_WORLD)
    original = world.read_text() if exclude and world.is_file() else None
    installed = _apk_installed(context) if exclude else {}
    pins = {name: installed[name] for name in exclude if name in installed}
    if pins:
        # Pin each excluded package to its installed version in the world file for this upgrade.
        kept = [entry for entry in (original or "").split()
                if re.split(r"[=<>~@]", entry, maxsplit=1)[0] not in pins]
        world.write_text("\n".join([*kept, *(f"{name}={version}" for name, version in pins.items())]) + "\n")

    def restore() -> None:
        if pins:
            if original is None:
                world.unlink(missing_ok=True)
            else:
                world.write_text(original)

    def upgrade() -> None:
        run([path, "upgrade", *targets])

    _with_cleanup(upgrade, restore)


HANDLERS = {"apt-get": _apt, "dnf": _dnf, "yum": _dnf, "zypper": _zypper, "apk": _apk}


@register
class UpdateOS(Action):
    name = "UpdateOS"
    inputs = UpdateOSInputs

    def execute(self, inputs: UpdateOSInputs, context: StepContext) -> ActionResult:
        manager, path = choose_manager(context)
        targets = [name for name in inputs.include if name not in inputs.exclude]
        if inputs.include and not targets:
            context.console("every included package is also excluded; nothing to update")
            return ActionResult()
        context.console(f"updating with {manager} ({path})")
        try:
            HANDLERS[manager](context, path, targets, list(dict.fromkeys(inputs.exclude)))
        except OSError as error:
            raise ActionFailed(f"{manager}: {error.strerror or error}") from None
        return ActionResult()
