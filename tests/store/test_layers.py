from __future__ import annotations

import os
import tarfile
from pathlib import Path

import zstandard

from kiln.store.blobs import BlobStore
from kiln.store.layers import capture
from kiln.store.layout import LAYER_GZIP
from kiln.store.unpack import unpack_layer


def _tree(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "a.conf").write_text("alpha\n")
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(b"\x7fELF" + os.urandom(2048))
    os.chmod(root / "bin" / "tool", 0o4755)
    os.chown(root / "etc" / "a.conf", 1234, 4321)
    os.link(root / "bin" / "tool", root / "bin" / "tool-hardlink")
    os.symlink("../etc/a.conf", root / "bin" / "conf-link")
    os.setxattr(
        root / "bin" / "tool",
        "security.capability",
        bytes.fromhex("0100000200200000000000000000000000000000"),
    )
    return root


def test_same_tree_same_digest_twice(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    store = BlobStore(tmp_path / "store")
    first, second = capture(tree, store), capture(tree, store)
    assert first.digest == second.digest and first.diff_id == second.diff_id
    assert first.media_type.endswith("tar+zstd")


def test_source_date_epoch_clamps_mtimes(tmp_path: Path, monkeypatch) -> None:
    tree = _tree(tmp_path / "tree")
    store = BlobStore(tmp_path / "store")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000000")
    before = capture(tree, store)
    for path in [tree, *tree.rglob("*")]:
        os.utime(path, (2_000_000_000, 2_000_000_000), follow_symlinks=False)
    after = capture(tree, store)
    assert before.digest == after.digest
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert capture(tree, store).digest != before.digest


def test_tar_keeps_owner_mode_xattr_hardlink_and_no_names(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    store = BlobStore(tmp_path / "store")
    layer = capture(tree, store)
    with open(store.path(layer.digest), "rb") as raw:
        stream = zstandard.ZstdDecompressor().stream_reader(raw)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            members = {m.name: m for m in tar}
    assert list(members) == sorted(members, key=lambda n: n.split("/"))
    conf = members["etc/a.conf"]
    assert (conf.uid, conf.gid, conf.uname, conf.gname) == (1234, 4321, "", "")
    assert members["bin/tool"].mode == 0o4755
    assert "SCHILY.xattr.security.capability" in members["bin/tool"].pax_headers
    assert members["bin/tool-hardlink"].islnk() and members["bin/tool-hardlink"].linkname == "bin/tool"
    assert not any(k in m.pax_headers for m in members.values() for k in ("atime", "ctime"))


def test_unpack_round_trip_preserves_metadata(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    store = BlobStore(tmp_path / "store")
    layer = capture(tree, store)
    out = unpack_layer(store, layer.digest, layer.media_type)
    assert (out / "etc" / "a.conf").read_text() == "alpha\n"
    st = os.stat(out / "etc" / "a.conf")
    assert (st.st_uid, st.st_gid) == (1234, 4321)
    assert os.stat(out / "bin" / "tool").st_mode & 0o7777 == 0o4755
    assert os.stat(out / "bin" / "tool").st_ino == os.stat(out / "bin" / "tool-hardlink").st_ino
    assert os.getxattr(out / "bin" / "tool", "security.capability") == os.getxattr(
        tree / "bin" / "tool", "security.capability"
    )
    assert os.readlink(out / "bin" / "conf-link") == "../etc/a.conf"
    # a second call reuses the cache dir
    assert unpack_layer(store, layer.digest, layer.media_type) == out


def test_gzip_layers_are_reproducible(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    store = BlobStore(tmp_path / "store")
    first = capture(tree, store, compression="gzip")
    assert first.media_type == LAYER_GZIP
    assert capture(tree, store, compression="gzip").digest == first.digest
    header = store.path(first.digest).read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert (unpack_layer(store, first.digest, first.media_type) / "etc" / "a.conf").exists()


def test_the_layer_is_hashed_and_written_beside_the_walk_and_its_failure_is_told(tmp_path: Path) -> None:
    """Big trees go through the sink thread in order (the bytes are tarfile's reading); a target
    failing midway (a full disk, which a test cannot make here) stops the capture with its error."""
    import errno
    import hashlib
    import io

    import pytest

    from kiln.store.layers import write_tar

    root = _tree(tmp_path / "tree")
    for n in range(40):
        (root / "etc" / f"data-{n:02d}").write_bytes(os.urandom(100_000))  # several MiB blocks
    out = io.BytesIO()
    diff_id = write_tar(root, out)
    assert diff_id == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        names = tar.getnames()
        assert tar.extractfile("etc/data-39").read() == (root / "etc" / "data-39").read_bytes()  # type: ignore[union-attr]
    assert names == sorted(names, key=lambda name: name.split("/")) and len(names) == 46

    class Full(io.RawIOBase):
        written = 0

        def write(self, data: bytes) -> int:  # type: ignore[override]
            self.written += len(data)
            if self.written > 2 << 20:
                raise OSError(errno.ENOSPC, "No space left on device")
            return len(data)

    with pytest.raises(OSError, match="No space left"):
        write_tar(root, Full())


def test_a_layer_of_several_compression_jobs_is_the_same_bytes_in_any_store(tmp_path: Path) -> None:
    """zstd compresses a big layer in jobs on worker threads: the blob is still the same bytes,
    whichever store (and so whichever scheduling of the jobs) captures the same tree."""
    root = _tree(tmp_path / "tree")
    pattern = os.urandom(4096)
    for n in range(12):  # 12 MiB of compressible data: several jobs
        (root / "etc" / f"blob-{n:02d}").write_bytes(pattern * 256)
    first = capture(root, BlobStore(tmp_path / "one"))
    second = capture(root, BlobStore(tmp_path / "two"))
    assert first == second
    one = (tmp_path / "one" / "blobs" / "sha256" / first.digest.split(":")[1]).read_bytes()
    two = (tmp_path / "two" / "blobs" / "sha256" / second.digest.split(":")[1]).read_bytes()
    assert one == two and len(one) < 2 << 20  # compressed, not stored
    with zstandard.ZstdDecompressor().stream_reader(one, read_across_frames=True) as stream, \
            tarfile.open(fileobj=stream, mode="r|") as tar:
        assert tar.next() is not None
