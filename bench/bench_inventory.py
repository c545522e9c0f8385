"""Inventory and SBOM of the Debian demo image's parent (debian:bookworm minbase), and dpkg parsing at scale.

- inventory: ``store.image_inventory`` on the bootstrapped AMI (its layers already unpacked: the
  first read unpacks them, as any use of the image does), beside python-debian's ``Deb822`` paragraph
  iterator reading the same ``var/lib/dpkg/status`` for the same fields (no layers, no purls): the
  ratio says what walking the layer stack, os-release and purls cost over bare parsing.
- SBOM: SPDX 2.3 and CycloneDX 1.6 bytes made from that inventory (generation only, best of 5).
- scale: a synthetic 10,000-package status (the demo's stanza sizes), kiln's parser vs Deb822.

The bootstrap tarball is cached in bench/.cache/bootstrap; offline and without it, a synthetic status
of the same size stands in (``source`` says which).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.timing import best_of

CACHE = Path(__file__).parent / ".cache" / "bootstrap"
ROUNDS = 5
SCALE = 10_000


def _set_home(path: Path) -> None:
    from kiln.db.engine import get_engine, reset_engines

    path.mkdir(parents=True, exist_ok=True)
    os.environ["KILN_HOME"] = str(path)
    reset_engines()
    get_engine()


def _stanza(index: int) -> str:
    return (f"Package: package-{index}\nStatus: install ok installed\nPriority: optional\nSection: libs\n"
            f"Installed-Size: {100 + index}\nMaintainer: Someone <someone@example.org>\nArchitecture: amd64\n"
            f"Multi-Arch: same\nSource: source-{index // 3} (1.{index}-1)\nVersion: 1.{index}-1+b1\n"
            f"Depends: libc6 (>= 2.34), zlib1g (>= 1:1.2.0)\nDescription: synthetic package {index}\n"
            " A longer description of the package, as dpkg keeps it,\n over two lines.\n\n")


def _demo_ami(home: Path) -> tuple[str, str]:
    """(AMI id, where it came from): the bootstrapped bookworm minbase, else a synthetic stand-in."""
    from kiln.store import api as store

    os.environ["KILN_BOOTSTRAP_CACHE"] = str(CACHE)
    try:
        return store.bootstrap_image("debian:bookworm"), "debian:bookworm minbase (mmdebstrap)"
    except Exception as error:  # offline: mmdebstrap cannot reach the archive
        root = home / "synthetic-root"
        (root / "var/lib/dpkg").mkdir(parents=True)
        (root / "etc").mkdir()
        (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
        (root / "var/lib/dpkg/status").write_text("".join(_stanza(i) for i in range(96)))
        return store.import_rootfs(root, name="synthetic-bookworm"), f"synthetic 96-package status ({error})"


def _deb822_read(data: bytes) -> list[tuple[str, str, str, str]]:
    from debian.deb822 import Deb822

    rows = []
    for paragraph in Deb822.iter_paragraphs(data.decode().splitlines(keepends=True), use_apt_pkg=False):
        if paragraph.get("Status", "").endswith(" installed"):
            rows.append((paragraph["Package"], paragraph["Version"], paragraph.get("Architecture", ""),
                         paragraph.get("Source", paragraph["Package"])))
    return rows


def _inventory_side(ami: str) -> dict[str, Any]:
    from kiln.services.inventory.sbom_cyclonedx import cyclonedx_json
    from kiln.services.inventory.sbom_spdx import spdx_json
    from kiln.services.inventory.subject import SbomSubject
    from kiln.store import api as store
    from kiln.store.layer_view import LayerView

    started = time.perf_counter()
    inventory = store.image_inventory(ami)  # unpacks the layers on first use
    first = time.perf_counter() - started
    kiln_s, inventory = best_of(lambda: store.image_inventory(ami), ROUNDS)
    status = LayerView(store.layer_dirs(ami)).read_bytes("/var/lib/dpkg/status") or b""
    deb822_s, rows = best_of(lambda: _deb822_read(status), ROUNDS)
    info = store.get_image(ami)
    subject = SbomSubject(ami, info.name, "local", info.architecture, info.manifest_digest or "",
                          info.creation_date, inventory)
    spdx_s, spdx = best_of(lambda: spdx_json(subject), ROUNDS)
    cdx_s, cdx = best_of(lambda: cyclonedx_json(subject), ROUNDS)
    return {
        "packages": len(inventory.packages),
        "deb822_packages (same status)": len(rows),
        "status_bytes": len(status),
        "first_inventory_s (unpacks the layers)": round(first, 3),
        "inventory_ms": round(kiln_s * 1000, 2),
        "deb822_parse_ms": round(deb822_s * 1000, 2),
        "inventory_vs_deb822_ratio": round(kiln_s / deb822_s, 2),
        "spdx_ms": round(spdx_s * 1000, 2),
        "spdx_bytes": len(spdx),
        "cyclonedx_ms": round(cdx_s * 1000, 2),
        "cyclonedx_bytes": len(cdx),
    }


def _scale_side() -> dict[str, Any]:
    from kiln.store.package_formats.dpkg import parse_status

    data = "".join(_stanza(i) for i in range(SCALE)).encode()
    kiln_s, found = best_of(lambda: parse_status(data, "status"), ROUNDS)
    deb822_s, rows = best_of(lambda: _deb822_read(data), ROUNDS)
    assert len(found) == len(rows) == SCALE
    return {
        f"scale_{SCALE}_status_mb": round(len(data) / 1e6, 2),
        f"scale_{SCALE}_kiln_parse_ms": round(kiln_s * 1000, 1),
        f"scale_{SCALE}_deb822_ms": round(deb822_s * 1000, 1),
        f"scale_{SCALE}_kiln_vs_deb822_ratio": round(kiln_s / deb822_s, 3),
    }


def run() -> dict[str, object]:
    from kiln.services.startup import install

    install()
    workdir = Path(tempfile.mkdtemp(prefix="kiln-bench-inventory-"))
    previous = {name: os.environ.get(name) for name in ("KILN_HOME", "KILN_BOOTSTRAP_CACHE")}
    try:
        _set_home(workdir / "home")
        ami, source = _demo_ami(workdir / "home")
        return {"source": source, **_inventory_side(ami), **_scale_side()}
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(workdir, ignore_errors=True)
