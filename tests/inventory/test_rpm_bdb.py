"""RPM's BerkeleyDB ``Packages`` (RHEL/CentOS 7-8, Amazon Linux 2) read from its bytes, nothing run: a
real database (headers rpm wrote, the hash file Berkeley DB's own loader wrote, rpm's reader agreeing),
in both byte orders, gives what rpm itself lists; a damaged one is one error naming the file. SUSE's ndb
``Packages.db`` (written by the test in rpm's layout: this rpm has no ndb backend) reads the same."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import Kiln
from tests.inventory.package_dbs import os_release
from tests.inventory.rpm_dbs import bdb_packages, build_rpms, ndb_packages, need_tools, rpm_query, sqlite_rpmdb

from kiln.store.package_formats.rpm import parse_bdb, parse_ndb, parse_sqlite

AMAZON_2 = 'NAME="Amazon Linux"\nVERSION="2"\nID="amzn"\nVERSION_ID="2"\nPRETTY_NAME="Amazon Linux 2"\n'


@pytest.fixture(scope="module")
def rpm_dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    need_tools()
    work = tmp_path_factory.mktemp("rpmdbs")
    sqlite_db = sqlite_rpmdb(work, build_rpms(work / "build"))
    return {"sqlite": sqlite_db, "le": bdb_packages(work, sqlite_db), "be": bdb_packages(work, sqlite_db,
                                                                                          big_endian=True)}


def _lines(packages: list) -> list[str]:
    def evr(version: str) -> str:
        return version if ":" in version else f"(none):{version}"

    return sorted(f"{p.name} {evr(p.version)} {p.architecture} {p.upstream}" for p in packages)


@pytest.mark.parametrize("order", ["le", "be"])
def test_a_real_berkeleydb_reads_as_rpm_reads_it(rpm_dbs: dict[str, Path], order: str) -> None:
    packages_file = rpm_dbs[order]
    assert packages_file.stat().st_size > 3 * 4096  # hash pages and overflow chains, not one page
    expected = rpm_query(packages_file.parent, "bdb_ro")
    assert expected == rpm_query(rpm_dbs["sqlite"].parent, "sqlite")  # rpm reads the file as its own
    found = parse_bdb(packages_file.read_bytes(), "/var/lib/rpm/Packages")
    assert _lines(found) == expected
    assert found == parse_sqlite(rpm_dbs["sqlite"], "rpmdb.sqlite")
    delta = next(p for p in found if p.name == "delta-kiln")
    assert (delta.version, delta.epoch, delta.source_version) == ("3:10.2-7.el7_9", "3", "3:10.2-7.el7_9")


def test_an_amazon_linux_2_image_lists_its_packages(kiln: Kiln, rpm_dbs: dict[str, Path],
                                                     busybox_copy: Callable[[str], Path]) -> None:
    root = busybox_copy("amzn2")
    os_release(root, AMAZON_2)
    (root / "var/lib/rpm").mkdir(parents=True)
    shutil.copyfile(rpm_dbs["le"], root / "var/lib/rpm/Packages")
    ami = kiln("image", "import", str(root), "--name", "amzn2").stdout.strip()
    result = kiln("image", "packages", ami, "--output", "json")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)["imagePackageList"]
    assert [(r["name"], r["version"], r["architecture"]) for r in records] == [
        ("alpha-kiln", "1.0-1.el7", "x86_64"), ("beta-kiln", "1:2.5.1-3.amzn2", "noarch"),
        ("delta-kiln", "3:10.2-7.el7_9", "x86_64"), ("gamma-kiln", "0.1-0.rc1.el8", "x86_64")]
    beta = records[1]
    assert beta["purl"] == ("pkg:rpm/amzn/beta-kiln@2.5.1-3.amzn2?arch=noarch&distro=amzn-2&epoch=1"
                            "&upstream=beta-kiln-2.5.1-3.amzn2.src.rpm")
    sbom = kiln("image", "sbom", ami, "--format", "cyclonedx-json")
    assert sbom.exit_code == 0 and "delta-kiln" in sbom.stdout


@pytest.mark.parametrize(("damage", "says"), [
    (lambda data: data[:300], "too short for a BerkeleyDB database"),
    (lambda data: b"\0" * 4096 + data[4096:], "not a BerkeleyDB hash database"),
    (lambda data: data[:4096 * 2], "missing or not itself"),  # overflow pages cut off
])
def test_a_damaged_database_is_one_error_naming_it(kiln: Kiln, rpm_dbs: dict[str, Path], damage: Callable,
                                                   says: str, busybox_copy: Callable[[str], Path]) -> None:
    root = busybox_copy("broken")
    os_release(root, AMAZON_2)
    (root / "var/lib/rpm").mkdir(parents=True)
    (root / "var/lib/rpm/Packages").write_bytes(damage(rpm_dbs["le"].read_bytes()))
    ami = kiln("image", "import", str(root), "--name", "broken").stdout.strip()
    result = kiln("image", "packages", ami)
    assert result.exit_code == 1
    assert "/var/lib/rpm/Packages" in result.stderr and says in result.stderr
    assert "Traceback" not in result.stderr


def test_an_ndb_database_reads_as_the_sqlite_one(kiln: Kiln, rpm_dbs: dict[str, Path],
                                                 busybox_copy: Callable[[str], Path]) -> None:
    ndb = ndb_packages(rpm_dbs["sqlite"].parent.parent, rpm_dbs["sqlite"])
    found = parse_ndb(ndb.read_bytes(), "/usr/lib/sysimage/rpm/Packages.db")
    assert found == parse_sqlite(rpm_dbs["sqlite"], "rpmdb.sqlite")
    assert _lines(found) == rpm_query(rpm_dbs["sqlite"].parent, "sqlite")
    root = busybox_copy("suse")
    os_release(root, 'ID="opensuse-leap"\nVERSION_ID="15.5"\nPRETTY_NAME="openSUSE Leap 15.5"\n')
    (root / "usr/lib/sysimage/rpm").mkdir(parents=True)
    shutil.copyfile(ndb, root / "usr/lib/sysimage/rpm/Packages.db")
    ami = kiln("image", "import", str(root), "--name", "suse").stdout.strip()
    records = json.loads(kiln("image", "packages", ami, "--output", "json").stdout)["imagePackageList"]
    assert [(r["name"], r["ecosystem"]) for r in records][:2] == [("alpha-kiln", "openSUSE:Leap 15.5"),
                                                                  ("beta-kiln", "openSUSE:Leap 15.5")]
    damaged = bytearray(ndb.read_bytes())
    damaged[4096 + 40] ^= 0xFF  # a byte of the first blob
    (root / "usr/lib/sysimage/rpm/Packages.db").write_bytes(bytes(damaged))
    broken = kiln("image", "import", str(root), "--name", "suse-broken").stdout.strip()
    result = kiln("image", "packages", broken)
    assert result.exit_code == 1 and "/usr/lib/sysimage/rpm/Packages.db: package #1" in result.stderr
    assert "Adler-32" in result.stderr and "Traceback" not in result.stderr
