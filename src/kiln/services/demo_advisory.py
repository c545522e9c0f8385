"""The fleet demo's package and advisory: a real package, really installed, and an advisory about it.

The demo's parent is busybox standing in for a Debian 12 minbase (its ``/etc/os-release`` says Debian 12,
so the scan reads its dpkg database in OSV's ``Debian:12`` ecosystem without downloading Debian) with an
empty dpkg database and, as a local archive in ``/var/cache/apt/archives``, two builds of the demo's own
package ``web-server`` (1.0-1 and 1.0-2, real ``.deb`` files written here). The image's components install
one with the image's own dpkg (busybox's applet), which records it in ``/var/lib/dpkg/status``; nothing
is written into the database by hand.

The advisory ``DEMO-2026-0001`` (an OSV record the demo writes and imports as the source ``fleet-demo``)
says web-server before 1.0-2 has a HIGH vulnerability fixed in 1.0-2 — the version the patched rebuild
installs, so the rebuild really no longer matches it.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from kiln.db.base import utcnow

PACKAGE = "web-server"
VULNERABLE, FIXED = "1.0-1", "1.0-2"
ARCHIVES = "var/cache/apt/archives"
ADVISORY = "DEMO-2026-0001"
SOURCE = "fleet-demo"
DEBIAN_12 = ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
             'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n')
CVSS_HIGH = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"  # 7.5


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        parents = {"/".join(name.split("/")[:i]) for name in files for i in range(1, name.count("/") + 1)}
        for directory in sorted(parents):
            info = tarfile.TarInfo(f"./{directory}")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    """A Unix ``ar`` archive (a .deb's container)."""
    out = [b"!<arch>\n"]
    for name, data in members:
        out.append(f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode())
        out.append(data + (b"\n" if len(data) % 2 else b""))
    return b"".join(out)


def deb(version: str) -> bytes:
    """web-server ``version`` as a Debian binary package (control and data members, gzip)."""
    control = (f"Package: {PACKAGE}\nVersion: {version}\nArchitecture: all\n"
               "Maintainer: kiln fleet demo <demo@kiln.invalid>\nDescription: the fleet demo's web server\n")
    data = {"etc/web-server.conf": f"version {version}\n".encode()}
    return _ar([("debian-binary", b"2.0\n"), ("control.tar.gz", _tar_gz({"control": control.encode()})),
                ("data.tar.gz", _tar_gz(data))])


def prepare_parent(root: Path) -> None:
    """The busybox root as the demo's Debian 12 stand-in: os-release, an empty dpkg database, the archive."""
    (root / "etc" / "os-release").write_text(DEBIAN_12)
    (root / "var" / "lib" / "dpkg" / "info").mkdir(parents=True, exist_ok=True)
    (root / "var" / "lib" / "dpkg" / "status").write_text("")
    archives = root / ARCHIVES
    archives.mkdir(parents=True, exist_ok=True)
    for version in (VULNERABLE, FIXED):
        (archives / f"{PACKAGE}_{version}_all.deb").write_bytes(deb(version))


def install_command(version: str) -> str:
    """What the demo's component runs in the build instance: the image's own dpkg installs the package."""
    return f"dpkg -i /{ARCHIVES}/{PACKAGE}_{version}_all.deb"


def record() -> dict[str, object]:
    now = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "schema_version": "1.6.0", "id": ADVISORY, "published": now, "modified": now,
        "summary": f"{PACKAGE}: remote information disclosure (the fleet demo's advisory)",
        "severity": [{"type": "CVSS_V3", "score": CVSS_HIGH}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": PACKAGE},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": FIXED}]}]}],
    }


def publish(workdir: Path) -> None:
    """Write the advisory as an OSV file and import it (``kiln vulndb import FILE --source fleet-demo``)."""
    from kiln.services.scanning.advisories import import_advisories

    path = workdir / f"{ADVISORY}.json"
    path.write_text(json.dumps(record()))
    import_advisories(str(path), source=SOURCE)
