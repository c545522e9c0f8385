"""A captured tree that becomes its layer's unpacked dir is exactly what unpacking the blob gives.

Imports extract a tarball once and a build hands its root volume to the layer cache; both must leave
the same tree (metadata, content, xattrs, links, whiteouts) as a fresh unpack of the blob, and
every refusal of a hostile parent tarball must stay as it was.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.store.conftest import signature, xattrs

from kiln.errors import InvalidInput
from kiln.store import api, unpack
from kiln.store.blobs import BlobQuarantined
from kiln.store.fidelity import CaptureRecord
from kiln.store.layout import Layout

pytestmark = pytest.mark.root


def fresh_unpack_matches(layer_dir: Path, aside: Path, unpack_again: Callable[[], Path]) -> None:
    """Move ``layer_dir`` aside, unpack the blob again, and compare the two trees."""
    shutil.move(str(layer_dir), aside)
    fresh = unpack_again()
    assert fresh == layer_dir
    assert signature(aside) == signature(fresh)


@pytest.fixture
def count_extractions(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    original = unpack.extract_stream

    def counting(stream: Any, dest: Path, **kwargs: Any) -> None:
        calls.append(dest)
        original(stream, dest, **kwargs)

    monkeypatch.setattr(unpack, "extract_stream", counting)
    return calls


def _add(tar: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **fields: Any) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode, info.mtime = fields.pop("mode", 0o644), fields.pop("mtime", 1_700_000_000)
    for key, value in fields.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def rich_tarball(path: Path) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "./", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "etc/", tarfile.DIRTYPE, mode=0o750, uid=0, gid=4)
        _add(tar, "etc/motd", data=b"hello\n", mtime=1_700_000_000.25)  # a fraction of a second
        _add(tar, "etc/future", data=b"later\n", mtime=1_900_000_000)  # past SOURCE_DATE_EPOCH
        _add(tar, "usr/bin/tool", data=b"#!/bin/sh\n", mode=0o4755, uid=1000, gid=1000)  # implicit dirs
        _add(tar, "usr/bin/same", tarfile.LNKTYPE, linkname="usr/bin/tool")
        _add(tar, "usr/bin/abs", tarfile.SYMTYPE, linkname="/usr/bin/tool")
        _add(tar, "usr/bin/rel", tarfile.SYMTYPE, linkname="tool")
        _add(tar, "run/pipe", tarfile.FIFOTYPE, mode=0o600)
        _add(tar, "var/attrs", data=b"x", pax_headers={"SCHILY.xattr.user.kiln": "yes"})
        _add(tar, "var/lib/", tarfile.DIRTYPE, mode=0o755, pax_headers={"SCHILY.xattr.trusted.overlay.opaque": "y"})
        _add(tar, "var/lib/data", data=os.urandom(70_000))
    return path


def test_imported_tarball_is_extracted_once_and_is_its_blob_unpacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count_extractions: list[Path]
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
    ami = api.import_rootfs(rich_tarball(tmp_path / "rootfs.tar"), name="rich")
    assert len(count_extractions) == 1  # the tarball; the blob was not unpacked again
    layer = api.layer_dirs(ami)[0]
    assert os.lstat(layer / "etc" / "future").st_mtime == 1_800_000_000  # clamped like the blob
    assert "trusted.overlay.opaque" not in xattrs(str(layer / "var" / "lib"))
    fresh_unpack_matches(layer, tmp_path / "adopted", lambda: api.layer_dirs(ami)[0])
    assert len(count_extractions) == 2


def test_import_of_a_directory_leaves_the_directory(tmp_path: Path, busybox_dir: Path) -> None:
    before = signature(busybox_dir)
    ami = api.import_rootfs(busybox_dir, name="from-dir")
    assert signature(busybox_dir) == before
    assert (api.layer_dirs(ami)[0] / "bin" / "busybox").exists()


def _upper(tmp_path: Path) -> Path:
    """An overlay upper dir as a build leaves it: whiteouts, an opaque dir, overlayfs' own xattrs."""
    upper = tmp_path / "upper"
    (upper / "etc" / "old").mkdir(parents=True)
    os.mknod(upper / "etc" / "hostname", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    os.setxattr(upper / "etc" / "old", "trusted.overlay.opaque", b"y")
    os.setxattr(upper / "etc", "trusted.overlay.impure", b"y")
    (upper / "etc" / "old" / "fresh.conf").write_text("fresh\n")
    (upper / "etc" / "motd").write_text("welcome\n")
    os.setxattr(upper / "etc" / "motd", "trusted.overlay.origin", b"\x00\xfb\x21")
    os.link(upper / "etc" / "motd", upper / "etc" / "motd.link")
    (upper / "usr" / "local" / "bin").mkdir(parents=True)
    (upper / "usr" / "local" / "bin" / "app").write_bytes(os.urandom(50_000))
    os.chmod(upper / "usr" / "local" / "bin" / "app", 0o2755)
    os.symlink("../bin/app", upper / "usr" / "local" / "app")
    os.setxattr(upper, "trusted.overlay.origin", b"\x00")
    return upper


def test_build_upper_dir_becomes_the_new_layers_unpacked_dir(
    tmp_path: Path, base_ami: str, count_extractions: list[Path]
) -> None:
    upper = _upper(tmp_path)
    record = CaptureRecord()
    child = api.create_image_from_upper(base_ami, upper, name="child", record=record)
    assert record.refusal is None and record.mtimes  # nanosecond mtimes become whole seconds
    assert api.adopt_top_layer(child, upper, record)
    assert not upper.exists()
    top = api.layer_dirs(child)[1]
    assert count_extractions == []
    assert stat.S_ISCHR(os.lstat(top / "etc" / "hostname").st_mode)
    assert xattrs(str(top / "etc" / "old")) == {"trusted.overlay.opaque": b"y"}
    assert xattrs(str(top / "etc" / "motd")) == {}
    fresh_unpack_matches(top, tmp_path / "adopted", lambda: api.layer_dirs(child)[1])


@pytest.mark.parametrize("case", ["whiteout-name", "socket", "escaping-symlink"])
def test_trees_unpacking_would_change_or_refuse_are_not_used(tmp_path: Path, base_ami: str, case: str) -> None:
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "kept").write_text("x\n")
    if case == "whiteout-name":
        (upper / "etc" / ".wh.passwd").write_text("")  # unpacking turns it into a whiteout
    elif case == "socket":
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(upper / "etc" / "sock"))
    else:
        os.symlink("../../../outside", upper / "etc" / "escape")
    record = CaptureRecord()
    child = api.create_image_from_upper(base_ami, upper, name="child", record=record)
    assert record.refusal is not None
    assert not api.adopt_top_layer(child, upper, record)
    assert (upper / "etc" / "kept").exists()  # left for its owner to delete
    if case == "escaping-symlink":
        with pytest.raises(InvalidInput, match="escapes the root"):
            api.layer_dirs(child)
        return
    top = api.layer_dirs(child)[1]  # unpacked from the blob, as always
    assert not (top / "etc" / "sock").exists()
    if case == "whiteout-name":
        assert stat.S_ISCHR(os.lstat(top / "etc" / "passwd").st_mode)


def test_size_limit_still_applies(tmp_path: Path, base_ami: str, monkeypatch: pytest.MonkeyPatch) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "big").write_bytes(b"0" * 10_000)
    record = CaptureRecord()
    child = api.create_image_from_upper(base_ami, upper, name="child", record=record)
    monkeypatch.setenv("KILN_LAYER_SIZE_LIMIT", "4096")
    assert not api.adopt_top_layer(child, upper, record)
    with pytest.raises(InvalidInput, match="size limit"):
        api.layer_dirs(child)


HOSTILE = {
    "dotdot": ([("etc/ok", b"ok"), ("../../evil", b"x")], "../../evil: '..' in layer path"),
    "malformed-whiteout": ([("etc/ok", b"ok"), ("etc/.wh...", b"")], "etc/.wh...: malformed whiteout entry"),
    "whiteout-and-entry": (
        [("etc/foo", b"x"), ("etc/.wh.foo", b"")], "etc/foo: entry collides with an existing path"
    ),
    "symlink-escape": (
        [("etc/ok", b"ok"), ("etc/esc", "../../../etc")], "etc/esc: symlink target '../../../etc' escapes the root"
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_tampered_parent_tarball_is_refused_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    entries, message = HOSTILE[case]
    cache = tmp_path / "bootstrap"
    cache.mkdir()
    monkeypatch.setenv("KILN_BOOTSTRAP_CACHE", str(cache))
    with tarfile.open(cache / "bookworm.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            if isinstance(data, str):
                _add(tar, name, tarfile.SYMTYPE, linkname=data)
            else:
                _add(tar, name, data=data)
    with pytest.raises(InvalidInput) as error:
        api.bootstrap_image("debian:bookworm")
    # named by the tarball, or by the layer blob where whiteouts are read (unpacking it)
    assert re.fullmatch(rf"layer ({re.escape(str(cache / 'bookworm.tar'))}|sha256:[0-9a-f]{{64}}), entry "
                        + re.escape(message), str(error.value))
    assert api.describe_images(filters={"state": ["available", "deregistered", "failed"]}) == []
    assert api.list_snapshots() == []
    assert [p for p in unpack.layer_cache_root().iterdir() if not p.name.startswith(".")] == []


def test_tampered_blob_is_not_adopted(tmp_path: Path, base_ami: str) -> None:
    upper = _upper(tmp_path)
    record = CaptureRecord()
    child = api.create_image_from_upper(base_ami, upper, name="child", record=record)
    blob = Layout.for_region("local").blobs.path(api.image_layers(child)[-1].digest)
    blob.write_bytes(blob.read_bytes()[:-1] + bytes([blob.read_bytes()[-1] ^ 1]))
    assert not api.adopt_top_layer(child, upper, record)
    with pytest.raises(BlobQuarantined):
        api.layer_dirs(child)
