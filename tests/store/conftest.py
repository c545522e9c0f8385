from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kiln.home import region_dir
from kiln.store import api, trailing


@pytest.fixture
def base_ami(busybox_dir: Path) -> str:
    """``busybox_dir`` (the session's busybox tree, tests/conftest.py) imported into this test's store."""
    return api.import_rootfs(busybox_dir, name="busybox-base")


def _blob_files(region: str = "local") -> dict[str, int]:
    """The blob files actually on disk: digest -> size."""
    root = region_dir(region) / "blobs" / "sha256"
    return {"sha256:" + p.name: p.stat().st_size for p in root.iterdir()}


@pytest.fixture
def blob_files() -> Callable[..., dict[str, int]]:
    return _blob_files


def xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    return {name: os.getxattr(path, name, follow_symlinks=False) for name in sorted(names)}


def signature(root: Path) -> dict[str, tuple[Any, ...]]:
    """Everything a layer dir means to overlayfs and to kiln, per entry (atimes aside)."""
    entries: dict[str, tuple[Any, ...]] = {}
    inodes: dict[int, str] = {}
    top = os.lstat(root)
    entries["."] = ("root", stat.S_IMODE(top.st_mode), top.st_uid, top.st_gid, xattrs(str(root)))
    for directory, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                entries[relative] = ("whiteout",)  # only its existence is meaningful
                continue
            content: Any = None
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                link_group = inodes.setdefault(st.st_ino, relative)
                content = (content, link_group)
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            entries[relative] = (
                stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                st.st_mtime_ns, st.st_rdev, content, xattrs(path),
            )  # fmt: skip
    return entries


# --- refused imports through the CLI: one line, nothing left, nothing registered ---------------------


def _leftovers(home: Path) -> tuple[list[str], list[str]]:
    """What an import may leave in KILN_HOME's cache: scratch dirs, and unpacked (or half) layers."""
    scratch = home / "cache" / "tmp"
    layers = home / "cache" / "layers"
    return (
        sorted(p.name for p in scratch.iterdir()) if scratch.is_dir() else [],
        sorted(p.name for p in layers.iterdir()) if layers.is_dir() else [],
    )


@pytest.fixture
def refused_import(kiln: Callable[..., Any], kiln_home: Path) -> Callable[..., str]:
    """``refused_import(source, *options, env=...)`` runs ``kiln image import`` that must fail, asserts
    it printed one error line (no traceback) with exit code 1, left nothing in the cache and registered
    nothing, and returns the error line without its ``error: ``."""

    def run(source: Path, *options: str, env: dict[str, str | None] | None = None) -> str:
        before = _leftovers(kiln_home)
        index = region_dir() / "index.json"
        manifests = json.loads(index.read_text())["manifests"] if index.exists() else []
        snapshots = api.list_snapshots()
        result = kiln("image", "import", str(source), "--name", "refused-import", *options, env=env)
        assert result.exit_code == 1, result.stderr
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if not line.startswith("importing ")]
        assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
        assert _leftovers(kiln_home) == before
        assert (json.loads(index.read_text())["manifests"] if index.exists() else []) == manifests
        assert api.list_snapshots() == snapshots
        listed = kiln("image", "list", "--output", "json", "--include-deprecated", "--include-disabled")
        assert "refused-import" not in listed.stdout
        return errors[0].removeprefix("error: ")

    return run


# --- hand-made OCI image layouts ------------------------------------------------------------------


@dataclass
class OciLayout:
    root: Path
    manifest: str
    config: str
    layer: str

    def blob(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")


def oci_layout(
    root: Path,
    layer: bytes,
    media_type: str,
    diff_id: str,
    *,
    config_edit: Callable[[dict[str, Any]], None] = lambda config: None,
    manifest_edit: Callable[[dict[str, Any]], None] = lambda manifest: None,
    index_edit: Callable[[dict[str, Any]], None] = lambda index: None,
) -> OciLayout:
    """A one-layer OCI image layout; each ``*_edit`` changes its document before it is stored (and
    digested, so the descriptors above it name what was stored)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    config: dict[str, Any] = {"architecture": "amd64", "os": "linux",
                              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}  # fmt: skip
    config_edit(config)
    layer_desc = {"mediaType": media_type, **put(layer)}
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(json.dumps(config).encode())},
        "layers": [layer_desc],
    }
    config_digest = manifest["config"]["digest"]
    manifest_edit(manifest)
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": manifest["mediaType"], **put(json.dumps(manifest).encode())}],
    }
    index_edit(index)
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return OciLayout(root, index["manifests"][0]["digest"], config_digest, layer_desc["digest"])


@pytest.fixture
def outcomes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each trailing capture gave up."""
    seen: list[bool] = []
    original = trailing.TrailingCapture.result

    def result(self: trailing.TrailingCapture) -> Any:
        layer = original(self)
        seen.append(self.given_up)
        return layer

    monkeypatch.setattr(trailing.TrailingCapture, "result", result)
    return seen
