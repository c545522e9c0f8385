"""Layer entry names: bytes that are not UTF-8 are kept byte-exact through the store and every export;
names Linux cannot hold, and an oci-archive's ``..`` entry, are refused by one line naming the layer
and the entry (escaped), with nothing left in the scratch dir."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiln.store import api
from kiln.store.unpack import shown

BAD = b"caf\xe9-\xff"  # Latin-1, not UTF-8
BAD_NAME = BAD.decode("utf-8", "surrogateescape")


def _tar(path: Path, entries: list[tuple[str, bytes | None]]) -> Path:
    """A PAX tar of files (data) and directories (None), names given as tarfile strings."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def _gnu_tar_of_bad_name(tmp_path: Path) -> Path:
    """What GNU tar writes for a tree holding a file whose name is not UTF-8."""
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "motd").write_text("hi\n")
    with open(os.path.join(bytes(tree), b"etc", BAD), "wb") as handle:
        handle.write(b"latin-1 name\n")
    archive = tmp_path / "latin1.tar"
    subprocess.run(["tar", "--format=posix", "-C", str(tree), "-cf", str(archive), "."], check=True)
    return archive


def test_a_name_that_is_not_utf8_is_kept_byte_exact(tmp_path: Path, kiln: Callable[..., Any]) -> None:
    imported = kiln("image", "import", str(_gnu_tar_of_bad_name(tmp_path)), "--name", "latin1")
    assert imported.exit_code == 0, imported.stderr
    ami = imported.stdout.strip()
    etc = bytes(api.layer_dirs(ami)[0] / "etc")
    assert sorted(os.listdir(etc)) == sorted([b"motd", BAD])
    assert Path(os.fsdecode(os.path.join(etc, BAD))).read_bytes() == b"latin-1 name\n"

    # a flattened tar export
    exported = kiln("image", "export", ami, "--format", "tar", "-o", str(tmp_path / "out.tar"))
    assert exported.exit_code == 0, exported.stderr
    listing = subprocess.run(
        ["tar", "--quoting-style=literal", "-tf", str(tmp_path / "out.tar")], capture_output=True, check=True
    ).stdout
    assert b"etc/" + BAD + b"\n" in listing

    # a raw ext4 disk (the name as the file system stores it)
    exported = kiln("image", "export", ami, "--format", "raw", "-o", str(tmp_path / "disk.raw"))
    assert exported.exit_code == 0, exported.stderr
    ls = subprocess.run(["debugfs", "-R", "ls -p /etc", str(tmp_path / "disk.raw")], capture_output=True, check=True)
    assert b"/" + BAD + b"/" in ls.stdout

    # an oci-archive export imports again as the same layer
    exported = kiln("image", "export", ami, "--format", "oci-archive", "-o", str(tmp_path / "oci.tar"))
    assert exported.exit_code == 0, exported.stderr
    again = kiln("image", "import", str(tmp_path / "oci.tar"), "--name", "latin1-again")
    assert again.exit_code == 0, again.stderr
    assert api.image_layers(again.stdout.strip()) == api.image_layers(ami)


def test_a_refused_name_that_is_not_utf8_is_shown_escaped(
    tmp_path: Path, refused_import: Callable[..., str]
) -> None:
    archive = _tar(tmp_path / "conflict.tar", [(BAD_NAME, b"x"), (BAD_NAME, None)])
    error = refused_import(archive)
    assert error == f"layer {archive}, entry caf\\xe9-\\xff: duplicate entry in layer"


def test_a_name_longer_than_255_bytes(
    tmp_path: Path, kiln: Callable[..., Any], refused_import: Callable[..., str]
) -> None:
    name = "etc/" + "é" * 127 + "xy"  # 256 bytes
    archive = _tar(tmp_path / "long-name.tar", [("etc/ok", b"ok"), (name, b"x")])
    assert refused_import(archive) == (
        f"layer {archive}, entry {shown(name)}: a name in the path is longer than 255 bytes"
    )
    fits = _tar(tmp_path / "fits.tar", [(name[:-1], b"x")])  # 255 bytes: a name Linux holds
    imported = kiln("image", "import", str(fits), "--name", "fits")
    assert imported.exit_code == 0, imported.stderr
    assert (api.layer_dirs(imported.stdout.strip())[0] / name[:-1]).read_bytes() == b"x"


def test_a_path_longer_than_4095_bytes(tmp_path: Path, refused_import: Callable[..., str]) -> None:
    name = "/".join(["d" * 250] * 17)  # 4266 bytes, each name fine
    archive = _tar(tmp_path / "deep.tar", [(name, b"x")])
    error = refused_import(archive)
    assert error == f"layer {archive}, entry {shown(name)}: path is longer than 4095 bytes"
    assert len(error) < 400  # one readable line, the name cut in the middle


def test_a_symlink_target_linux_cannot_hold(tmp_path: Path, refused_import: Callable[..., str]) -> None:
    archive = tmp_path / "target.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("etc/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/" + "t" * 5000
        tar.addfile(info)
    assert refused_import(archive) == f"layer {archive}, entry etc/link: cannot create the entry: File name too long"


def test_an_oci_archive_with_a_dotdot_entry(tmp_path: Path, refused_import: Callable[..., str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = _tar(
        work / "evil-oci.tar",
        [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), ("index.json", b'{"manifests": []}'),
         ("../../escaped", b"x")],
    )  # fmt: skip
    assert refused_import(archive) == f"archive {archive}, entry ../../escaped: '..' in layer path"
    assert not (tmp_path / "escaped").exists() and not (work.parent.parent / "escaped").exists()
