"""The bare side of bench_build: the demo's commands in plain bubblewrap over the bootstrapped rootfs.

The commands come from the component documents (recipe order; build and validate phases, then the
test phase), not retyped; UpdateOS is the apt-get pair the action runs. Each step is one ``bwrap``
over an overlay of the unpacked rootfs (so the rootfs stays as unpacked, for the next build), with
kiln's namespaces and capabilities, the host's network and resolver, and no kiln at all.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

BUILD_PHASES, TEST_PHASES = ("build", "validate"), ("test",)
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "TERM": "dumb"}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _component_document(name: str, demo: list[dict[str, Any]]) -> dict[str, Any]:
    from kiln.services.components.managed import managed_document

    for doc in demo:
        if doc.get("kind") == "Component" and doc.get("name") == name:
            return yaml.safe_load(doc["data"])
    return yaml.safe_load(managed_document(name))


def _parameters(document: dict[str, Any], entry: dict[str, Any]) -> dict[str, str]:
    values = {}
    for declared in document.get("parameters") or []:
        for key, spec in declared.items():
            if "default" in spec:
                values[key] = str(spec["default"])
    for given in entry.get("parameters") or []:
        values[given["name"]] = str(given["value"][0])
    return values


def _step_script(step: dict[str, Any], parameters: dict[str, str]) -> str:
    """The shell a step runs: ExecuteBash's script (as the action writes it), or UpdateOS's apt-get."""
    from kiln.documents.actions.update_os import DPKG_OPTIONS

    if step["action"] == "ExecuteBash":
        body = "set -e\n" + "\n".join(step["inputs"]["commands"]) + "\n"
        return PLACEHOLDER.sub(lambda match: parameters[match.group(1)], body)
    if step["action"] == "UpdateOS":
        return ("export DEBIAN_FRONTEND=noninteractive\nset -e\napt-get update\n"
                f"apt-get -y {' '.join(DPKG_OPTIONS)} upgrade\n")
    raise ValueError(f"bench_build has no bare equivalent of action {step['action']}")


def demo_scripts(demo_file: Path, phases: tuple[str, ...]) -> list[tuple[str, str]]:
    """(``component/phase/step``, script) for the demo recipe's components in recipe order."""
    demo = documents(demo_file)
    recipe = next(doc for doc in demo if doc.get("kind") == "ImageRecipe")
    scripts = []
    for entry in recipe["components"]:
        name = entry["componentArn"].split(":component/", 1)[1].split("/")[0]
        document = _component_document(name, demo)
        parameters = _parameters(document, entry)
        by_name = {phase["name"]: phase for phase in document.get("phases") or []}
        for phase in phases:
            for step in (by_name.get(phase) or {}).get("steps") or []:
                scripts.append((f"{name}/{phase}/{step['name']}", _step_script(step, parameters)))
    return scripts


def _bwrap(root: Path, script: str) -> None:
    target = root / "tmp" / "bench-step.sh"
    target.write_text(script)
    resolv = root / "etc" / "resolv.conf"
    binds = [] if resolv.is_symlink() else ["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]
    argv = [
        "bwrap", "--bind", str(root), "/", "--proc", "/proc", "--dev", "/dev",
        "--perms", "1777", "--tmpfs", "/dev/shm",
        "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--hostname", "bare", "--cap-add", "ALL",
        *binds, "--chdir", "/tmp", "bash", "/tmp/bench-step.sh",
    ]  # fmt: skip
    try:
        subprocess.run(argv, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except subprocess.CalledProcessError as error:
        raise RuntimeError(f"bare step failed: {error.stderr.decode(errors='replace')[-400:]}") from None
    finally:
        target.unlink(missing_ok=True)


def unpack(tarball: Path, rootfs: Path) -> float:
    rootfs.mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(rootfs)], check=True)
    return time.perf_counter() - started


def build(demo_file: Path, rootfs: Path, scratch: Path) -> dict[str, float]:
    """Every build/validate step, then every test step, over a fresh overlay of ``rootfs``; seconds
    per step (each includes starting its bwrap, as kiln's step times include entering the instance)."""
    upper, work, merged = scratch / "upper", scratch / "work", scratch / "merged"
    for path in (upper, work, merged):
        path.mkdir(parents=True)
    options = f"lowerdir={rootfs},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=True)
    steps: dict[str, float] = {}
    try:
        for label, script in demo_scripts(demo_file, BUILD_PHASES) + demo_scripts(demo_file, TEST_PHASES):
            started = time.perf_counter()
            _bwrap(merged, script)
            steps[label] = time.perf_counter() - started
    finally:
        if subprocess.run(["umount", str(merged)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(merged)], check=False)
    shutil.rmtree(scratch, ignore_errors=True)
    return steps
