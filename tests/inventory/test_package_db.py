"""Reading package databases through layer stacks: dpkg, distroless status.d, RPM sqlite, apk; OS
release to OSV ecosystem; purls; whiteouts and opaque dirs hiding a database; one clear error."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from packageurl import PackageURL
from tests.inventory.package_dbs import (
    apk_stanza,
    dpkg_stanza,
    os_release,
    rpm_header,
    write,
    write_rpmdb,
)

from kiln.errors import InvalidInput
from kiln.store.package_db import NoPackageDatabase, OsRelease, osv_ecosystem, read_inventory

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'


def whiteout(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, 0o020000 | 0o600, os.makedev(0, 0))


def test_dpkg_status_installed_only_with_sources_and_purls(tmp_path: Path) -> None:
    os_release(tmp_path, DEBIAN, "usr/lib/os-release")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").symlink_to("../usr/lib/os-release")
    write(tmp_path, "var/lib/dpkg/status", "".join([
        dpkg_stanza("libc6", "2.36-9+deb12u4", source="glibc"),
        dpkg_stanza("bash", "5.2.15-2+b2", source="bash (5.2.15-2)"),
        dpkg_stanza("removed", "1.0", status="deinstall ok config-files"),
        dpkg_stanza("tzdata", "2024a-0+deb12u1", arch="all"),
    ]))
    inventory = read_inventory([tmp_path])
    assert inventory.databases == ("/var/lib/dpkg/status",)
    assert inventory.ecosystem == "Debian:12"
    by_name = {p.name: p for p in inventory.packages}
    assert sorted(by_name) == ["bash", "libc6", "tzdata"]
    assert (by_name["libc6"].source_name, by_name["libc6"].source_version) == ("glibc", "2.36-9+deb12u4")
    assert (by_name["bash"].source_name, by_name["bash"].source_version) == ("bash", "5.2.15-2")
    purl = PackageURL.from_string(by_name["libc6"].purl)
    assert (purl.type, purl.namespace, purl.name, purl.version) == ("deb", "debian", "libc6", "2.36-9+deb12u4")
    assert purl.qualifiers == {"arch": "amd64", "distro": "debian-12", "upstream": "glibc"}
    assert PackageURL.from_string(by_name["bash"].purl).qualifiers["upstream"] == "bash@5.2.15-2"
    assert "upstream" not in PackageURL.from_string(by_name["tzdata"].purl).qualifiers


def test_distroless_status_d(tmp_path: Path) -> None:
    os_release(tmp_path, DEBIAN)
    write(tmp_path, "var/lib/dpkg/status.d/base-files", dpkg_stanza("base-files", "12.4+deb12u5").replace(
        "Status: install ok installed\n", ""))
    write(tmp_path, "var/lib/dpkg/status.d/base-files.md5sums", "0123  etc/debian_version\n")
    write(tmp_path, "var/lib/dpkg/status.d/openssl", dpkg_stanza("libssl3", "3.0.11-1~deb12u2", source="openssl"))
    inventory = read_inventory([tmp_path])
    assert inventory.databases == ("/var/lib/dpkg/status.d",)
    assert [(p.name, p.source_name) for p in inventory.packages] == [("base-files", "base-files"),
                                                                       ("libssl3", "openssl")]


def test_rpm_sqlite_headers(tmp_path: Path) -> None:
    os_release(tmp_path, 'NAME="Rocky Linux"\nID="rocky"\nVERSION_ID="9.3"\n')
    write_rpmdb(tmp_path / "usr/lib/sysimage/rpm/rpmdb.sqlite", [
        rpm_header(name="bash", version="5.1.8", release="6.el9_1", arch="x86_64",
                   sourcerpm="bash-5.1.8-6.el9_1.src.rpm"),
        rpm_header(name="openssl-libs", version="3.0.7", release="24.el9", epoch=1, arch="x86_64",
                   sourcerpm="openssl-3.0.7-24.el9.src.rpm"),
        rpm_header(name="gpg-pubkey", version="350d275d", release="6395e8da"),  # rpm's pseudo-package
    ])
    (tmp_path / "var/lib").mkdir(parents=True)
    (tmp_path / "var/lib/rpm").symlink_to("../../usr/lib/sysimage/rpm")
    inventory = read_inventory([tmp_path])
    assert inventory.databases == ("/usr/lib/sysimage/rpm/rpmdb.sqlite",)
    assert inventory.ecosystem == "Rocky Linux:9"
    bash, openssl = inventory.packages
    assert (bash.name, bash.version, bash.architecture, bash.source_name, bash.source_version) == (
        "bash", "5.1.8-6.el9_1", "x86_64", "bash", "5.1.8-6.el9_1")
    assert (openssl.version, openssl.source_name, openssl.source_version) == (
        "1:3.0.7-24.el9", "openssl", "1:3.0.7-24.el9")
    purl = PackageURL.from_string(openssl.purl)
    assert (purl.type, purl.namespace, purl.version) == ("rpm", "rocky", "3.0.7-24.el9")
    assert purl.qualifiers == {"arch": "x86_64", "distro": "rocky-9.3", "epoch": "1",
                               "upstream": "openssl-3.0.7-24.el9.src.rpm"}


def test_corrupt_rpm_header_names_the_row(tmp_path: Path) -> None:
    write_rpmdb(tmp_path / "var/lib/rpm/rpmdb.sqlite", [rpm_header(name="a", version="1", release="1", arch="noarch"),
                                                        b"\x00\x00\x10\x00\x00\x00\x00\x10junk"])
    with pytest.raises(InvalidInput) as caught:
        read_inventory([tmp_path])
    assert str(caught.value).startswith("/var/lib/rpm/rpmdb.sqlite: Packages#2: RPM header blob is not a header")


def test_a_bogus_berkeleydb_rpm_is_one_error_by_name(tmp_path: Path) -> None:
    write(tmp_path, "var/lib/rpm/Packages", "bdb")
    with pytest.raises(InvalidInput, match=r"^/var/lib/rpm/Packages: too short for a BerkeleyDB database"):
        read_inventory([tmp_path])


def test_a_bogus_ndb_rpm_is_one_error_by_name(tmp_path: Path) -> None:
    write(tmp_path, "var/lib/rpm/Packages.db", "ndb")
    with pytest.raises(InvalidInput, match=r"^/var/lib/rpm/Packages.db: not an RPM ndb database"):
        read_inventory([tmp_path])


def test_apk_installed(tmp_path: Path) -> None:
    os_release(tmp_path, 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\n')
    write(tmp_path, "lib/apk/db/installed", apk_stanza("musl", "1.2.4_git20230717-r4") + "\n"
          + apk_stanza("libcrypto3", "3.1.4-r5", origin="openssl"))
    inventory = read_inventory([tmp_path])
    assert inventory.ecosystem == "Alpine:v3.19"
    libcrypto, musl = inventory.packages
    assert (libcrypto.source_name, libcrypto.source_version) == ("openssl", "3.1.4-r5")
    assert libcrypto.purl == "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl"
    assert (musl.name, musl.version) == ("musl", "1.2.4_git20230717-r4")


def test_malformed_dpkg_status_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "var/lib/dpkg/status", dpkg_stanza("a", "1") + "\nPackage: b\nthis line has no colon\n")
    with pytest.raises(InvalidInput, match=r"^/var/lib/dpkg/status:11: not a 'Field: value' line"):
        read_inventory([tmp_path])


def test_layers_whiteout_and_opaque_dir_hide_databases(tmp_path: Path) -> None:
    base, middle, top = (tmp_path / name for name in ("base", "middle", "top"))
    os_release(base, DEBIAN)
    write(base, "var/lib/dpkg/status", dpkg_stanza("old", "1"))
    write(middle, "var/lib/dpkg/status", dpkg_stanza("old", "1") + "\n" + dpkg_stanza("new", "2"))
    assert [p.name for p in read_inventory([base, middle]).packages] == ["new", "old"]
    whiteout(top / "var/lib/dpkg/status")
    with pytest.raises(NoPackageDatabase) as caught:
        read_inventory([base, middle, top], "ami-0123")
    assert str(caught.value).startswith("no package database found in ami-0123 (tried /var/lib/dpkg/status, ")
    assert "/lib/apk/db/installed" in str(caught.value) and "rpmdb.sqlite" in str(caught.value)
    # an opaque /var/lib in a new layer hides the lower dpkg dir; its own status is what counts
    opaque = tmp_path / "opaque"
    write(opaque, "var/lib/dpkg/status", dpkg_stanza("fresh", "3"))
    os.setxattr(opaque / "var/lib", "trusted.overlay.opaque", b"y")
    assert [p.name for p in read_inventory([base, middle, opaque]).packages] == ["fresh"]


def test_symlinks_stay_inside_the_image(tmp_path: Path) -> None:
    outside = tmp_path / "host"
    write(outside, "status", dpkg_stanza("host-package", "1"))
    image = tmp_path / "image"
    (image / "var/lib").mkdir(parents=True)
    (image / "var/lib/dpkg").symlink_to("../../../host")  # climbs no higher than the image root
    with pytest.raises(NoPackageDatabase):
        read_inventory([image])


@pytest.mark.parametrize(("release", "ecosystem"), [
    (OsRelease("debian", "12"), "Debian:12"),
    (OsRelease("ubuntu", "22.04", lts=True), "Ubuntu:22.04:LTS"),
    (OsRelease("ubuntu", "23.10"), "Ubuntu:23.10"),
    (OsRelease("alpine", "3.19.1"), "Alpine:v3.19"),
    (OsRelease("almalinux", "9.3"), "AlmaLinux:9"),
    (OsRelease("rhel", "9.2"), "Red Hat:enterprise_linux:9"),
    (OsRelease("amzn", "2023"), ""),  # OSV has no Amazon Linux ecosystem
    (OsRelease("debian", ""), ""),  # testing/sid: no release to scope advisories to
])
def test_osv_ecosystems(release: OsRelease, ecosystem: str) -> None:
    assert osv_ecosystem(release) == ecosystem


def test_rpm_database_still_in_its_write_ahead_log(tmp_path: Path) -> None:
    import sqlite3

    scratch = tmp_path / "writer"
    scratch.mkdir()
    db = sqlite3.connect(scratch / "rpmdb.sqlite")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    db.execute("INSERT INTO Packages (blob) VALUES (?)",
               (rpm_header(name="zlib", version="1.2.11", release="40.el9", arch="x86_64"),))
    db.commit()
    image = tmp_path / "image"
    (image / "var/lib/rpm").mkdir(parents=True)
    for name in ("rpmdb.sqlite", "rpmdb.sqlite-wal"):  # copied while the writer is open: pages only in the WAL
        shutil.copyfile(scratch / name, image / "var/lib/rpm" / name)
    db.close()
    assert (image / "var/lib/rpm/rpmdb.sqlite-wal").stat().st_size > 0
    before = sorted(p.name for p in (image / "var/lib/rpm").iterdir())
    assert [p.name for p in read_inventory([image]).packages] == ["zlib"]
    assert sorted(p.name for p in (image / "var/lib/rpm").iterdir()) == before  # nothing written in the layer


@pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="the rpm Debian package (scripts/setup.sh) is missing")
def test_a_database_rpm_itself_wrote(tmp_path: Path) -> None:
    spec = tmp_path / "hello.spec"
    spec.write_text("Name: hello-kiln\nVersion: 1.2.3\nRelease: 4.el9\nEpoch: 2\nSummary: t\nLicense: MIT\n"
                    "BuildArch: noarch\n%description\nt\n%files\n")
    subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {tmp_path / 'top'}", str(spec)], check=True,
                   capture_output=True)
    [package] = (tmp_path / "top/RPMS/noarch").iterdir()
    image = tmp_path / "image"
    dbpath = image / "usr/lib/sysimage/rpm"
    dbpath.mkdir(parents=True)
    subprocess.run(["rpm", "--dbpath", str(dbpath), "--initdb"], check=True, capture_output=True)
    subprocess.run(["rpm", "--dbpath", str(dbpath), "-i", "--justdb", "--nodeps", str(package)], check=True,
                   capture_output=True)
    os_release(image, 'ID="almalinux"\nVERSION_ID="9.4"\n')
    [found] = read_inventory([image]).packages
    assert (found.name, found.version, found.architecture, found.source_name, found.source_version) == (
        "hello-kiln", "2:1.2.3-4.el9", "noarch", "hello-kiln", "2:1.2.3-4.el9")
    assert found.ecosystem == "AlmaLinux:9"
    assert found.purl == ("pkg:rpm/almalinux/hello-kiln@1.2.3-4.el9?arch=noarch&distro=almalinux-9.4&epoch=2"
                          "&upstream=hello-kiln-1.2.3-4.el9.src.rpm")
