"""One real mmdebstrap bootstrap of bookworm minbase (network; the tarball cache is shared)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.errors import InvalidInput
from kiln.store import api
from kiln.store.bootstrap import bootstrap_tarball, parse_source


def test_parse_source() -> None:
    assert parse_source("debian:bookworm") == ("debian", "bookworm")
    assert parse_source("ubuntu:noble") == ("ubuntu", "noble")
    with pytest.raises(InvalidInput):
        parse_source("fedora:40")


@pytest.mark.network
@pytest.mark.slow
def test_bootstrap_bookworm_minbase(bootstrap_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_BOOTSTRAP_CACHE", str(bootstrap_cache))
    ami = api.bootstrap_image("debian:bookworm")
    tarball = bootstrap_tarball("debian:bookworm")
    assert tarball.parent == bootstrap_cache and tarball.name == "bookworm.tar"
    mtime = tarball.stat().st_mtime
    root = api.layer_dirs(ami)[0]
    assert "VERSION_CODENAME=bookworm" in (root / "etc" / "os-release").read_text()
    assert (root / "usr" / "bin" / "dpkg").exists()
    assert api.get_image(ami).name == "debian-bookworm-minbase"
    # the cache is reused: a second image comes from the same tarball without mmdebstrap
    again = api.bootstrap_image("debian:bookworm", name="bookworm-again")
    assert tarball.stat().st_mtime == mtime
    assert api.image_layers(again)[0].digest == api.image_layers(ami)[0].digest
