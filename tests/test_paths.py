from __future__ import annotations

import os
from pathlib import Path

from kiln.paths import resolve_in_root


def test_links_resolve_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("x")
    os.symlink("/etc", root / "abs")
    os.symlink("../../../../etc", root / "climb")
    assert resolve_in_root(root, "/abs/passwd") == root / "etc" / "passwd"
    assert resolve_in_root(root, "/climb/passwd") == root / "etc" / "passwd"
    assert resolve_in_root(root, "/../../etc/passwd") == root / "etc" / "passwd"
    assert resolve_in_root(root, "/missing/file") == root / "missing" / "file"


def test_final_link_kept_when_not_following(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.symlink("/etc/shadow", root / "link")
    assert resolve_in_root(root, "/link", follow_final=False) == root / "link"
    assert resolve_in_root(root, "/link") == root / "etc" / "shadow"
