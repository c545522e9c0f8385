"""Real RPM databases for tests: packages built by ``rpmbuild``, recorded by ``rpm --justdb`` into its
sqlite database, and the same header blobs written as the BerkeleyDB hash ``Packages`` file of RPM before
4.16 by Berkeley DB's own ``db5.3_load`` (this rpm, 4.18, writes only sqlite: its BerkeleyDB backend is
the read-only ``bdb_ro``, which then reads the file back, and it has no ndb backend)."""

from __future__ import annotations

import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest

# (name, epoch, version, release, arch, description lines)
PACKAGES = [
    ("alpha-kiln", None, "1.0", "1.el7", "x86_64", 1),
    ("beta-kiln", 1, "2.5.1", "3.amzn2", "noarch", 1),
    ("gamma-kiln", None, "0.1", "0.rc1.el8", "x86_64", 1),
    ("delta-kiln", 3, "10.2", "7.el7_9", "x86_64", 150),  # a header over two 4 KiB pages
]


def need_tools() -> None:
    for tool in ("rpm", "rpmbuild", "db5.3_load"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup.sh installs it)")


def build_rpms(work: Path) -> list[Path]:
    specs = work / "SPECS"
    specs.mkdir(parents=True, exist_ok=True)
    for name, epoch, version, release, arch, lines in PACKAGES:
        text = [f"Name: {name}", f"Version: {version}", f"Release: {release}", "Summary: kiln test package",
                "License: MIT", f"BuildArch: {arch}"]
        if epoch is not None:
            text.append(f"Epoch: {epoch}")
        text += ["%description", *(f"line {n} of a description long enough to need overflow pages"
                                    for n in range(lines)), "%files", ""]
        spec = specs / f"{name}.spec"
        spec.write_text("\n".join(text))
        subprocess.run(["rpmbuild", "--define", f"_topdir {work}", "-bb", str(spec)], check=True,
                       capture_output=True)
    return sorted((work / "RPMS").rglob("*.rpm"))


def sqlite_rpmdb(work: Path, rpms: list[Path]) -> Path:
    dbpath = work / "sqlite-db"
    dbpath.mkdir()
    subprocess.run(["rpm", "--dbpath", str(dbpath), "--initdb"], check=True, capture_output=True)
    subprocess.run(["rpm", "--dbpath", str(dbpath), "-i", "--justdb", "--nodeps", "--ignorearch", "--ignoreos",
                    *map(str, rpms)], check=True, capture_output=True)
    return dbpath / "rpmdb.sqlite"


def bdb_packages(work: Path, sqlite_db: Path, *, big_endian: bool = False) -> Path:
    """The sqlite database's header blobs as a BerkeleyDB hash ``Packages`` file (keys: header numbers in
    the database's byte order)."""
    db = sqlite3.connect(f"file:{sqlite_db}?mode=ro", uri=True)
    rows = db.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
    db.close()
    order = ">I" if big_endian else "<I"
    dump = ["VERSION=3", "format=bytevalue", "type=hash", "db_pagesize=4096",
            f"db_lorder={4321 if big_endian else 1234}", "HEADER=END"]
    for number, blob in rows:
        dump += [" " + struct.pack(order, number).hex(), " " + bytes(blob).hex()]
    dump.append("DATA=END")
    target = work / ("bdb-be" if big_endian else "bdb-le") / "Packages"
    target.parent.mkdir()
    subprocess.run(["db5.3_load", str(target)], input="\n".join(dump) + "\n", text=True, check=True,
                   capture_output=True)
    return target


def rpm_query(dbpath: Path, backend: str) -> list[str]:
    """What rpm itself reads from the database: ``name epoch:version-release arch sourcerpm`` lines."""
    result = subprocess.run(["rpm", "--dbpath", str(dbpath), "--define", f"_db_backend {backend}", "-qa", "--qf",
                             "%{NAME} %{EPOCH}:%{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM}\\n"],
                            check=True, capture_output=True, text=True)
    return sorted(result.stdout.splitlines())


def ndb_packages(work: Path, sqlite_db: Path) -> Path:
    """The sqlite database's header blobs in rpm's ndb layout (``Packages.db``), written here as rpm's ndb
    backend lays it out: this rpm was built without that backend (``_db_backend ndb`` is "invalid"), so
    no tool here can make one. The blobs are the ones rpm wrote."""
    import zlib

    db = sqlite3.connect(f"file:{sqlite_db}?mode=ro", uri=True)
    rows = db.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
    db.close()
    block = 4096 // 16  # blobs start after the one slot page
    slots, blobs = [], bytearray()
    for index, blob in rows:
        blob = bytes(blob)
        count = -(-(16 + len(blob) + 12) // 16)
        body = b"BlbS" + struct.pack("<III", index, 1700000000, len(blob)) + blob
        body += b"\0" * (count * 16 - 12 - len(body))
        blobs += body + struct.pack("<II", zlib.adler32(body), len(blob)) + b"BlbE"
        slots.append(struct.pack("<4sIII", b"Slot", index, block, count))
        block += count
    header = b"RpmP" + struct.pack("<IIII", 0, 7, 1, len(rows) + 1) + b"\0" * 12
    page = header + b"".join(slots)
    page += b"Slot" + b"\0" * 12  # free slots fill the page
    page += (b"Slot" + b"\0" * 12) * ((4096 - len(page)) // 16)
    target = work / "ndb" / "Packages.db"
    target.parent.mkdir()
    target.write_bytes(page + bytes(blobs))
    return target
