"""Writing small package databases for tests: dpkg status stanzas, apk installed, and an RPM sqlite db
whose header blobs a tiny encoder writes (the documented layout: il, dl, index entries, data store)."""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

TYPE_INT32, TYPE_STRING = 4, 6
TAGS = {"name": 1000, "version": 1001, "release": 1002, "epoch": 1003, "arch": 1022, "sourcerpm": 1044}


def rpm_header(**values: str | int) -> bytes:
    """One header blob: the immutable region tag first (as rpm writes it), then the values given."""
    entries = [struct.pack(">iIiI", 63, 7, 0, 16)]  # RPMTAG_HEADERIMMUTABLE, BIN: skipped by readers
    data = bytearray(b"\0" * 16)
    for key, value in values.items():
        if isinstance(value, int):
            data += b"\0" * (-len(data) % 4)  # INT32 data is 4-aligned
            entries.append(struct.pack(">iIiI", TAGS[key], TYPE_INT32, len(data), 1))
            data += struct.pack(">i", value)
        else:
            entries.append(struct.pack(">iIiI", TAGS[key], TYPE_STRING, len(data), 1))
            data += value.encode() + b"\0"
    return struct.pack(">II", len(entries), len(data)) + b"".join(entries) + bytes(data)


def write_rpmdb(path: Path, headers: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    db.executemany("INSERT INTO Packages (blob) VALUES (?)", [(h,) for h in headers])
    db.commit()
    db.close()
    return path


def dpkg_stanza(name: str, version: str, arch: str = "amd64", source: str = "",
                status: str = "install ok installed") -> str:
    lines = [f"Package: {name}", f"Status: {status}", "Priority: optional", f"Architecture: {arch}"]
    if source:
        lines.append(f"Source: {source}")
    lines += [f"Version: {version}", f"Description: {name} for tests", " a continuation line: with a colon", ""]
    return "\n".join(lines) + "\n"


def apk_stanza(name: str, version: str, arch: str = "x86_64", origin: str = "") -> str:
    lines = ["C:Q1abc=", f"P:{name}", f"V:{version}", f"A:{arch}", "S:1000", "I:2000", "T:test package"]
    if origin:
        lines.append(f"o:{origin}")
    lines += ["F:usr/bin", f"R:{name}", "Z:Q1xyz=", ""]
    return "\n".join(lines) + "\n"


def os_release(root: Path, text: str, path: str = "etc/os-release") -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def write(root: Path, path: str, text: str) -> Path:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target
