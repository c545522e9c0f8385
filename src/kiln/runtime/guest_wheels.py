"""The compiled libraries kiln's AWSTOE runner needs in a VM guest whose CPython is not this host's
minor version: binary wheels of the exact ``pydantic_core`` this interpreter has, one per guest
minor, downloaded from PyPI by the setup (``python -m kiln.runtime.guest_wheels``, run by
``scripts/setup.sh``) into the virtual environment (``<venv>/share/kiln/guest-wheels``;
``KILN_GUEST_WHEELS`` names another directory). A wheel missing at run time is downloaded then.

The pure-Python libraries are this host's (the same files serve every minor); PyYAML's C extension
is left out for another minor (``yaml`` then uses its pure-Python loader).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kiln.errors import SystemRequirement

# the oldest CPython kiln.documents runs on (it imports datetime.UTC, new in 3.11)
MIN_PYTHON = (3, 11)
GUEST_PYTHONS = ("3.11", "3.12", "3.13", "3.14")  # the minors a guest may have (wheels fetched for each)
COMPILED = ("pydantic_core",)  # what the runner cannot do without, built for one CPython minor
PLATFORM = "manylinux2014_x86_64"  # what pydantic_core publishes (manylinux_2_17: any glibc guest)


def wheel_dir() -> Path:
    configured = os.environ.get("KILN_GUEST_WHEELS")
    return Path(configured) if configured else Path(sys.prefix) / "share" / "kiln" / "guest-wheels"


def host_minor() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def _tag(minor: str) -> str:
    return "cp" + minor.replace(".", "")


def wheel(package: str, minor: str) -> Path | None:
    """The downloaded wheel of this host's ``package`` version for CPython ``minor``, if there is one."""
    version = importlib.metadata.version(package)
    tag = _tag(minor)
    found = sorted(wheel_dir().glob(f"{package}-{version}-{tag}-{tag}-*.whl"))
    return found[0] if found else None


def fetch(minor: str) -> list[Path]:
    """The wheels of :data:`COMPILED` for CPython ``minor``: those already here, the others downloaded
    (``pip download``, binary only, no dependencies)."""
    wheels = []
    for package in COMPILED:
        have = wheel(package, minor)
        if have is None:
            _download(package, minor)
            have = wheel(package, minor)
            if have is None:
                raise SystemRequirement(f"pip downloaded no {package} wheel for CPython {minor} ({PLATFORM})")
        wheels.append(have)
    return wheels


def _download(package: str, minor: str) -> None:
    target = wheel_dir()
    pin = f"{package.replace('_', '-')}=={importlib.metadata.version(package)}"
    try:
        target.mkdir(parents=True, exist_ok=True)
        # into a directory of its own first: a wheel shows up whole or not at all (also for parallel setups)
        partial = tempfile.mkdtemp(dir=target, prefix=".download-")
    except OSError as error:
        raise SystemRequirement(f"cannot write {pin} for CPython {minor} into {target}: {error.strerror}",
                                hint="run scripts/setup.sh (make setup), or set KILN_GUEST_WHEELS to a "
                                "writable directory") from None
    try:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", pin,
                   "--only-binary=:all:", "--no-deps", "--implementation", "cp", "--python-version", minor,
                   "--abi", _tag(minor), "--platform", PLATFORM, "--dest", partial]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SystemRequirement(f"downloading {pin} for CPython {minor} failed: {error}",
                                    hint="run scripts/setup.sh (make setup) where PyPI is reachable") from None
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            tail = " | ".join(([line for line in lines if line.startswith("ERROR")] or lines)[-2:])
            raise SystemRequirement(f"downloading {pin} for CPython {minor} failed: {tail}",
                                    hint="run scripts/setup.sh (make setup) where PyPI is reachable")
        for path in Path(partial).glob("*.whl"):
            os.replace(path, target / path.name)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def main() -> int:
    try:
        for minor in GUEST_PYTHONS:
            if minor != host_minor():
                fetch(minor)
    except SystemRequirement as error:
        print(f"kiln setup: {error}" + (f" ({error.hint})" if error.hint else ""), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
