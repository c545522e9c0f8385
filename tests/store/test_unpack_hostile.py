"""Hostile layers are rejected with an error naming the entry, and nothing lands outside."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.errors import InvalidInput
from kiln.store.blobs import BlobStore
from kiln.store.layout import LAYER_TAR
from kiln.store.unpack import layer_cache_root, unpack_layer

Entry = Callable[[tarfile.TarFile], None]


def _file(name: str, data: bytes = b"x") -> Entry:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    return add


def _special(name: str, kind: bytes, linkname: str = "", major: int = 0, minor: int = 0) -> Entry:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = linkname
        info.devmajor, info.devminor = major, minor
        info.mode = 0o755
        tar.addfile(info)

    return add


def _layer(tmp_path: Path, entries: list[Entry]) -> tuple[BlobStore, str]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            entry(tar)
    store = BlobStore(tmp_path / "store")
    return store, store.put_bytes(buffer.getvalue())


def _dir(name: str, mode: int = 0o755, mtime: int = 1_700_000_000) -> Entry:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode, info.mtime = mode, mtime
        tar.addfile(info)

    return add


CASES = {
    "directory-then-file": ([_dir("etc/x"), _file("etc/x")], "etc/x"),
    "file-then-directory": ([_file("etc/x"), _dir("etc/x")], "etc/x"),
    "directory-repeated-with-other-mode": ([_dir("etc/d"), _dir("etc/d", mode=0o700)], "etc/d"),
    "directory-then-link-to-itself": ([_dir("etc/d"), _special("etc/d", tarfile.LNKTYPE, "etc/d")], "etc/d"),
    "absolute": ([_file("/etc/evil")], "/etc/evil"),
    "dotdot": ([_file("../../evil")], "../../evil"),
    "dotdot-inside": ([_file("a/../../evil")], "a/../../evil"),
    "symlink-escape": ([_special("esc", tarfile.SYMTYPE, "../../../etc")], "esc"),
    "hardlink-outside": ([_special("h", tarfile.LNKTYPE, "../../etc/passwd")], "h"),
    "hardlink-absolute": ([_special("h", tarfile.LNKTYPE, "/etc/passwd")], "h"),
    "through-symlinked-dir": ([_special("d", tarfile.SYMTYPE, "/tmp"), _file("d/evil")], "d/evil"),
    "hardlink-through-symlinked-dir": (
        [_special("d", tarfile.SYMTYPE, "/etc"), _special("h", tarfile.LNKTYPE, "d/passwd")],
        "h",
    ),
    "char-device": ([_special("dev/mem", tarfile.CHRTYPE, major=1, minor=1)], "dev/mem"),
    "block-device": ([_special("dev/sda", tarfile.BLKTYPE, major=8, minor=0)], "dev/sda"),
    "duplicate": ([_file("etc/x"), _file("etc/x")], "etc/x"),
    "duplicate-after-normalising": ([_file("etc/x"), _file("./etc//x")], "etc/x"),
    "whiteout-dotdot": ([_file("etc/.wh..."), _file("ok")], "etc/.wh..."),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_layer_rejected(tmp_path: Path, case: str) -> None:
    entries, named = CASES[case]
    store, digest = _layer(tmp_path, entries)
    outside = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(InvalidInput) as error:
        unpack_layer(store, digest, LAYER_TAR)
    assert f", entry {named}: " in str(error.value)
    # nothing was left in the cache (no partial dir) nor written next to it
    assert list(layer_cache_root().iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == outside
    assert not Path("/tmp/evil").exists()


def test_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, digest = _layer(tmp_path, [_file("big", b"0" * 10_000)])
    monkeypatch.setenv("KILN_LAYER_SIZE_LIMIT", "4096")
    with pytest.raises(InvalidInput, match="size limit"):
        unpack_layer(store, digest, LAYER_TAR)
    monkeypatch.setenv("KILN_LAYER_SIZE_LIMIT", str(1 << 20))
    assert (unpack_layer(store, digest, LAYER_TAR) / "big").stat().st_size == 10_000


def test_benign_absolute_symlink_and_inner_hardlink_accepted(tmp_path: Path) -> None:
    store, digest = _layer(
        tmp_path,
        [
            _file("usr/bin/real"),
            _special("usr/bin/abs", tarfile.SYMTYPE, "/usr/bin/real"),
            _special("usr/bin/rel", tarfile.SYMTYPE, "../bin/real"),
            _special("usr/bin/hard", tarfile.LNKTYPE, "usr/bin/real"),
        ],
    )
    out = unpack_layer(store, digest, LAYER_TAR)
    assert (out / "usr/bin/hard").stat().st_ino == (out / "usr/bin/real").stat().st_ino
    assert (out / "usr/bin/abs").readlink() == Path("/usr/bin/real")


def test_a_directory_listed_twice_alike_is_accepted(tmp_path: Path) -> None:
    """Common tools repeat a directory entry with the same metadata; that changes nothing."""
    store, digest = _layer(tmp_path, [_dir("etc"), _dir("etc/app"), _file("etc/app/conf"), _dir("etc/app"),
                                      _dir("./etc//app"), _special("etc/app/conf", tarfile.LNKTYPE, "etc/app/conf")])
    out = unpack_layer(store, digest, LAYER_TAR)
    assert (out / "etc/app/conf").read_bytes() == b"x"
    assert (out / "etc/app").stat().st_mode & 0o7777 == 0o755


def test_a_gnu_tar_with_overlapping_operands_imports(tmp_path: Path) -> None:
    """``tar -cf x.tar ./etc ./etc/app`` lists etc/app twice and its file again as a link to itself."""
    import subprocess

    from kiln.store import api

    root = tmp_path / "root"
    (root / "etc" / "app").mkdir(parents=True)
    (root / "etc" / "app" / "conf").write_text("hi\n")
    archive = tmp_path / "overlap.tar"
    subprocess.run(["tar", "--sort=name", "-C", str(root), "-cf", str(archive), "./etc", "./etc/app"], check=True)
    listing = subprocess.run(["tar", "-tvf", str(archive)], check=True, capture_output=True, text=True).stdout
    assert "link to ./etc/app/conf" in listing  # the repeat this test is about
    ami = api.import_rootfs(archive, name="overlapping-operands")
    assert (api.layer_dirs(ami)[0] / "etc" / "app" / "conf").read_text() == "hi\n"
