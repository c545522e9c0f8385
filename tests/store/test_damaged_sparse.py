"""A layer whose sparse-file map is damaged (tarfile's parser raises ValueError on it) is refused with one
clear error naming the layer, never a traceback, and nothing is registered."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _sparse_tar(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    with open(root / "sparse", "wb") as sparse:
        sparse.truncate(10 * 1024 * 1024)
        sparse.seek(5_000_000)
        sparse.write(b"hello\n")
    tar = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=pax", "-cf", str(tar), "-C", str(root), "sparse"], check=True)
    return tar


def test_a_damaged_sparse_map_is_one_clear_error(kiln, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tar = _sparse_tar(tmp_path)
    data = bytearray(tar.read_bytes())
    # pax header, its data, the member's header: the member's data starts with its sparse map (GNU 1.0)
    assert data[1536:1538] == b"2\n"
    data[1536:1539] = b"zz\n"
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(bytes(data))

    good = kiln("image", "import", str(tar), "--name", "good-sparse")
    assert good.exit_code == 0, good.stderr
    refused = kiln("image", "import", str(damaged), "--name", "bad-sparse")
    assert refused.exit_code == 1
    assert "Traceback" not in refused.stderr
    assert str(damaged) in refused.stderr and "damaged header" in refused.stderr
    listed = kiln("image", "list", "--output", "json")
    assert "bad-sparse" not in listed.stdout and "good-sparse" in listed.stdout
