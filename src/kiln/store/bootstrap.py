"""Parent OS images from Debian/Ubuntu archives with mmdebstrap (minbase), cached as tarballs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from kiln.errors import InvalidInput, SystemRequirement
from kiln.home import cache_dir

DEBIAN_MIRROR = "http://deb.debian.org/debian"
UBUNTU_MIRROR = "http://archive.ubuntu.com/ubuntu"
UBUNTU_SUITES = ("focal", "jammy", "noble", "oracular", "plucky")


def bootstrap_cache() -> Path:
    configured = os.environ.get("KILN_BOOTSTRAP_CACHE")
    path = Path(configured) if configured else cache_dir() / "bootstrap"
    path.mkdir(parents=True, exist_ok=True)
    return path


def parse_source(source: str) -> tuple[str, str]:
    distro, _, suite = source.partition(":")
    if not suite:
        distro, suite = "debian", distro
    if distro not in ("debian", "ubuntu") or not suite.isalnum():
        raise InvalidInput("bootstrap source is debian:<suite> or ubuntu:<suite>", location=source)
    return distro, suite


def bootstrap_tarball(source: str, include: list[str] | tuple[str, ...] = ()) -> Path:
    """The cached minbase tarball of ``source`` (built with mmdebstrap on first use)."""
    distro, suite = parse_source(source)
    name = (
        suite
        if not include
        else f"{suite}-{hashlib.sha256(','.join(sorted(include)).encode()).hexdigest()[:12]}"
    )
    target = bootstrap_cache() / f"{name}.tar"
    if target.exists():
        return target
    tool = shutil.which("mmdebstrap")
    if tool is None:
        raise SystemRequirement("mmdebstrap is not installed", hint="apt-get install mmdebstrap")
    if distro == "debian":
        mirror = os.environ.get("KILN_DEBIAN_MIRROR") or DEBIAN_MIRROR
    else:
        mirror = os.environ.get("KILN_UBUNTU_MIRROR") or UBUNTU_MIRROR
    partial = target.with_suffix(".tar.partial")
    command = [tool, "--variant=minbase", "--mode=root", "--skip=output/dev", "--format=tar", "--quiet"]
    if include:
        command.append("--include=" + ",".join(include))
    command += [suite, str(partial), mirror]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as error:
        partial.unlink(missing_ok=True)
        tail = (error.stderr or "").strip().splitlines()[-3:]
        raise SystemRequirement(f"mmdebstrap failed for {source}: {' | '.join(tail)}") from error
    os.rename(partial, target)
    return target
