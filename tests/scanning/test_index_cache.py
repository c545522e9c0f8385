"""The advisory index a process loads is kept while the advisory data's generation stays the same: an
import that changes records (in this process or another) makes the next load read anew; an unchanged
re-import and another ecosystem family keep their own answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.scanning.conftest import affected, fixed, osv, package

from kiln.services.scanning.advisories import import_advisories
from kiln.services.scanning.index import AdvisoryIndex
from kiln.services.scanning.matching import findings_for

OPENSSL = osv("DSA-5000-1", affected("Debian:12", "openssl", *fixed("3.0.11-1~deb12u2")))
CURL = osv("DSA-5001-1", affected("Debian:12", "curl", *fixed("7.88.1-10+deb12u5")),
           affected("Alpine:v3.19", "curl", *fixed("8.5.0-r0")))
LIBSSL = package("libssl3", "3.0.11-1~deb12u1", source="openssl")


def write(directory: Path, *records: dict) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.json"):
        old.unlink()
    for record in records:
        (directory / f"{record['id']}.json").write_text(json.dumps(record))
    return str(directory)


def test_the_index_is_kept_until_the_data_changes(kiln_home: Path, tmp_path: Path) -> None:
    import_advisories(write(tmp_path / "osv", OPENSSL), source="debian")
    first = AdvisoryIndex.load({"Debian:12"})
    assert AdvisoryIndex.load({"Debian:12"}) is first  # kept
    assert [f.vulnerability_id for f in findings_for([LIBSSL], db=first)] == ["DSA-5000-1"]
    alpine = AdvisoryIndex.load({"Alpine:v3.19"})
    assert alpine is not first and not alpine.covers("Alpine:v3.19")  # no Alpine data yet

    import_advisories(write(tmp_path / "osv", OPENSSL), source="debian")  # unchanged: still valid
    assert AdvisoryIndex.load({"Debian:12"}) is first

    withdrawn = {**OPENSSL, "withdrawn": "2026-11-20T00:00:00Z", "modified": "2026-11-20T00:00:00Z"}
    import_advisories(write(tmp_path / "osv", withdrawn, CURL), source="debian")
    second = AdvisoryIndex.load({"Debian:12"})
    assert second is not first
    assert findings_for([LIBSSL], db=second) == []
    assert {e.record["id"] for entries in second.buckets.values() for e in entries} == {"DSA-5001-1"}
    now_alpine = AdvisoryIndex.load({"Alpine:v3.19"})
    assert now_alpine.covers("Alpine:v3.19") and not now_alpine.covers("Debian:12")


def test_another_process_importing_invalidates_the_index(kiln_home: Path, tmp_path: Path) -> None:
    import_advisories(write(tmp_path / "osv", OPENSSL), source="debian")
    first = AdvisoryIndex.load({"Debian:12"})
    src = Path(__file__).resolve().parents[2] / "src"
    script = ("from kiln.services.scanning.advisories import import_advisories as load; "
              f"load({write(tmp_path / 'other', CURL)!r}, source='other')")
    subprocess.run([sys.executable, "-c", script], check=True, env={"KILN_HOME": str(kiln_home),
                                                                    "PYTHONPATH": str(src)})
    second = AdvisoryIndex.load({"Debian:12"})
    assert second is not first
    assert {e.record["id"] for entries in second.buckets.values() for e in entries} == {"DSA-5000-1", "DSA-5001-1"}


def test_a_new_database_is_not_mistaken_for_the_old(kiln_home: Path, tmp_path: Path, monkeypatch) -> None:
    import_advisories(write(tmp_path / "osv", OPENSSL), source="debian")
    first = AdvisoryIndex.load({"Debian:12"})
    from kiln.db.engine import reset_engines

    monkeypatch.setenv("KILN_HOME", str(tmp_path / "home2"))
    reset_engines()
    import_advisories(write(tmp_path / "osv", CURL), source="debian")  # generation 1 again, another token
    second = AdvisoryIndex.load({"Debian:12"})
    assert second is not first
    assert findings_for([LIBSSL], db=second) == []
