"""``kiln vulndb import|status``: OSV data from a zip, a directory or a JSON file, in one transaction; a
bad file imports nothing and the error names the file, the record and why."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Kiln
from tests.scanning.conftest import affected, fixed, osv

from kiln.services.scanning.index import AdvisoryIndex

GOOD = [
    osv("DSA-5000-1", affected("Debian:12", "openssl", *fixed("3.0.11-1~deb12u2"))),
    osv("DSA-5001-1", affected("Debian:12", "curl", *fixed("7.88.1-10+deb12u5")),
        affected("Debian:11", "curl", *fixed("7.74.0-1.3+deb11u11"))),
    osv("DEBIAN-CVE-2026-0001", affected("Debian:12", "glibc", {"introduced": "0"},
                                         ecosystem_specific={"urgency": "low"})),
]


def write_zip(path: Path, records: list[dict[str, Any]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return path


def stored_ids() -> list[str]:
    return sorted({entry.record["id"] for entries in AdvisoryIndex.load().buckets.values() for entry in entries})


def test_a_zip_imports_and_status_counts_per_ecosystem(kiln: Kiln, tmp_path: Path) -> None:
    done = kiln("vulndb", "import", str(write_zip(tmp_path / "all.zip", GOOD)), "--source", "debian",
                "--output", "json")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {"Source": "debian", "Location": str(tmp_path / "all.zip"), "Records": 3,
                                       "Ecosystems": {"Debian:11": 1, "Debian:12": 3}, "Changed": True,
                                       "Checked": 3}
    status = json.loads(kiln("vulndb", "status", "--output", "json").stdout)
    (source,) = status["Sources"]
    assert (source["Name"], source["Records"], source["Ecosystems"]) == ("debian", 3, {"Debian:11": 1, "Debian:12": 3})
    assert source["ImportedAt"] and 0 <= source["AgeDays"] < 1
    text = kiln("vulndb", "status").stdout
    assert "debian" in text and "Debian:12" in text and str(tmp_path / "all.zip") in text


def test_a_directory_and_a_json_list_import_and_replace_the_same_source(kiln: Kiln, tmp_path: Path) -> None:
    directory = tmp_path / "osv"
    directory.mkdir()
    for record in GOOD:
        (directory / f"{record['id']}.json").write_text(json.dumps(record))
    assert kiln("vulndb", "import", str(directory), "--source", "debian").exit_code == 0
    assert stored_ids() == ["DEBIAN-CVE-2026-0001", "DSA-5000-1", "DSA-5001-1"]
    (tmp_path / "one.json").write_text(json.dumps([GOOD[0]]))
    assert kiln("vulndb", "import", str(tmp_path / "one.json"), "--source", "debian").exit_code == 0
    assert stored_ids() == ["DSA-5000-1"]  # replaced, not added to
    assert kiln("vulndb", "import", str(directory / "DSA-5001-1.json"), "--source", "other").exit_code == 0
    assert stored_ids() == ["DSA-5000-1", "DSA-5001-1"]  # another source is kept beside


def _corrupt(path: Path) -> Path:
    write_zip(path, GOOD)
    data = bytearray(path.read_bytes())
    start = data.index(b"DSA-5000-1.json") + 40  # inside the first member's compressed data
    data[start:start + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    return path


def _truncated(path: Path) -> Path:
    write_zip(path, GOOD)
    path.write_bytes(path.read_bytes()[:-60])  # cut short: no end of central directory
    return path


def _bad_record(path: Path) -> Path:
    bad = osv("DSA-5002-1", affected("Debian:12", "zlib", {"introduced": "0", "fixed": "1.2.13-1"}))
    return write_zip(path, [*GOOD, bad])


def _unknown_ecosystem(path: Path) -> Path:
    return write_zip(path, [*GOOD, osv("XYZ-1", affected("Plan9:4", "rc", *fixed("1.0")))])


def _malformed_version(path: Path) -> Path:
    return write_zip(path, [*GOOD, osv("DSA-5003-1", affected("Debian:12", "zlib", *fixed("1.2_13")))])


def _not_json(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("DSA-1.json", '{"id": "DSA-1",\n "modified": ')
    return path


@pytest.mark.parametrize(("make", "says"), [
    (_corrupt, ["all.zip:DSA-5000-1.json", "corrupt zip member"]),
    (_truncated, ["all.zip", "not a zip archive (corrupt or partial download)"]),
    (_bad_record, ["all.zip:DSA-5002-1.json: DSA-5002-1", "affected[0].ranges[0].events[0]", "too many properties"]),
    (_unknown_ecosystem, ["XYZ-1.json: XYZ-1", "unknown ecosystem 'Plan9:4'"]),
    (_malformed_version, ["DSA-5003-1", "events[1].fixed", "'1.2_13' is not a valid dpkg version"]),
    (_not_json, ["DSA-1.json:2", "not JSON"]),
])
def test_a_bad_archive_imports_nothing_and_names_the_place(kiln: Kiln, tmp_path: Path, make: Any,
                                                           says: list[str]) -> None:
    first = write_zip(tmp_path / "first.zip", GOOD[:1])
    assert kiln("vulndb", "import", str(first), "--source", "debian").exit_code == 0
    done = kiln("vulndb", "import", str(make(tmp_path / "all.zip")), "--source", "debian")
    assert done.exit_code == 1 and "Traceback" not in done.stderr
    first_line = done.stderr.splitlines()[0]
    assert all(part in first_line for part in says), done.stderr
    assert stored_ids() == ["DSA-5000-1"]  # the previous import is untouched
    status = json.loads(kiln("vulndb", "status", "--output", "json").stdout)
    assert [(s["Name"], s["Records"]) for s in status["Sources"]] == [("debian", 1)]


def test_a_record_twice_is_refused(kiln: Kiln, tmp_path: Path) -> None:
    (tmp_path / "twice.json").write_text(json.dumps([GOOD[0], GOOD[0]]))
    done = kiln("vulndb", "import", str(tmp_path / "twice.json"))
    assert done.exit_code == 1 and "record DSA-5000-1 appears twice" in done.stderr
    assert stored_ids() == []


def test_findings_of_a_package_list_over_the_cli(kiln: Kiln, tmp_path: Path) -> None:
    assert kiln("vulndb", "import", str(write_zip(tmp_path / "all.zip", GOOD))).exit_code == 0
    packages = [
        {"name": "libssl3", "version": "3.0.11-1~deb12u1", "architecture": "amd64", "source_name": "openssl",
         "source_version": "3.0.11-1~deb12u1", "ecosystem": "Debian:12", "purl": "pkg:deb/debian/libssl3"},
        {"name": "libc6", "version": "2.36-9+deb12u3", "architecture": "amd64", "source_name": "glibc",
         "source_version": "2.36-9+deb12u3", "ecosystem": "Debian:12", "purl": ""},
        {"name": "musl", "version": "1.2.4-r2", "architecture": "x86_64", "source_name": "musl",
         "source_version": "1.2.4-r2", "ecosystem": "Alpine:v3.19", "purl": ""},
    ]
    (tmp_path / "packages.json").write_text(json.dumps({"packages": packages}))
    done = kiln("vulndb", "findings", "--packages-json", str(tmp_path / "packages.json"), "--output", "json")
    assert done.exit_code == 0, done.stderr
    answer = json.loads(done.stdout)
    assert sorted((f["vulnerabilityId"], f["package"]["name"], f["fixedVersion"], f["fixAvailable"])
                  for f in answer["Findings"]) == [("DEBIAN-CVE-2026-0001", "libc6", None, "NO"),
                                                   ("DSA-5000-1", "libssl3", "3.0.11-1~deb12u2", "YES")]
    assert answer["Summary"]["complete"] is False and answer["Summary"]["unknownEcosystems"] == ["Alpine:v3.19"]
    fixable = kiln("vulndb", "findings", "--packages-json", str(tmp_path / "packages.json"), "--fix-available")
    assert "DSA-5000-1" in fixable.stdout and "DEBIAN-CVE-2026-0001" not in fixable.stdout
    assert "UNKNOWN: no advisory data for Alpine:v3.19" in fixable.stdout


def test_a_bad_package_list_names_the_entry(kiln: Kiln, tmp_path: Path) -> None:
    (tmp_path / "packages.json").write_text(json.dumps([{"name": "a", "version": "1", "ecosystem": 12}]))
    done = kiln("vulndb", "findings", "--packages-json", str(tmp_path / "packages.json"))
    assert done.exit_code == 1 and "packages[0]: ecosystem: a string is required" in done.stderr


def test_a_reimport_checks_only_what_changed(kiln: Kiln, tmp_path: Path) -> None:
    def imported(records: list[dict[str, Any]], source: str) -> dict[str, Any]:
        done = kiln("vulndb", "import", str(write_zip(tmp_path / "all.zip", records)), "--source", source,
                    "--output", "json")
        assert done.exit_code == 0, done.stderr
        return json.loads(done.stdout)

    assert imported(GOOD, "debian")["Checked"] == 3
    changed = {**GOOD[0], "modified": "2026-11-05T00:00:00Z"}
    assert imported([changed, *GOOD[1:]], "debian")["Checked"] == 1  # the others were checked when they came in
    stored = {entry.record["id"]: entry.record["modified"] for entries in AdvisoryIndex.load().buckets.values()
              for entry in entries}
    assert stored == {"DSA-5000-1": "2026-11-05T00:00:00Z", "DSA-5001-1": "2026-11-01T00:00:00Z",
                      "DEBIAN-CVE-2026-0001": "2026-11-01T00:00:00Z"}
    assert imported(GOOD, "other")["Checked"] == 3  # another source's records are its own
