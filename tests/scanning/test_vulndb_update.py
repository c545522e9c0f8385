"""``kiln vulndb source add`` + ``update`` against a real HTTP server on loopback serving a zip: the
first update imports, the next sends the validators and a 304 changes nothing, a new zip re-imports, a
broken download imports nothing."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from tests.conftest import Kiln
from tests.scanning.conftest import LoopbackServer, Served, affected, fixed, http_date, osv

from kiln.services.scanning.index import AdvisoryIndex


def zipped(records: list[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return buffer.getvalue()


FIRST = [osv("DSA-1-1", affected("Debian:12", "curl", *fixed("7.88.1-10+deb12u5")))]
SECOND = [*FIRST, osv("DSA-2-1", affected("Debian:12", "zlib", *fixed("1:1.2.13.dfsg-1+deb12u1")))]


def ids() -> list[str]:
    return sorted({entry.record["id"] for entries in AdvisoryIndex.load().buckets.values() for entry in entries})


def test_update_fetches_conditionally(kiln: Kiln, http_server: LoopbackServer) -> None:
    http_server.files["/Debian/all.zip"] = Served(zipped(FIRST), etag='"v1"', last_modified=http_date(1.7e9))
    url = f"{http_server.url}/Debian/all.zip"
    assert kiln("vulndb", "source", "add", "debian", url).exit_code == 0
    assert json.loads(kiln("vulndb", "source", "list", "--output", "json").stdout) == {
        "Sources": [{"Name": "debian", "Url": url}]}

    first = kiln("vulndb", "update", "--output", "json")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["Sources"][0] | {"Ecosystems": None} == {
        "Source": "debian", "Location": url, "Records": 1, "Ecosystems": None, "Changed": True, "Checked": 1}
    assert ids() == ["DSA-1-1"]
    imported_at = json.loads(kiln("vulndb", "status", "--output", "json").stdout)["Sources"][0]["ImportedAt"]

    second = kiln("vulndb", "update")
    assert second.exit_code == 0 and "debian: unchanged (1 records)" in second.stdout
    path, status, headers = http_server.log[-1]
    assert (path, status, headers.get("If-None-Match")) == ("/Debian/all.zip", 304, '"v1"')
    assert headers.get("If-Modified-Since") == http_date(1.7e9)
    after = json.loads(kiln("vulndb", "status", "--output", "json").stdout)["Sources"][0]
    assert after["ImportedAt"] == imported_at and after["CheckedAt"] > imported_at  # nothing re-imported
    assert ids() == ["DSA-1-1"]

    http_server.files["/Debian/all.zip"] = Served(zipped(SECOND), etag='"v2"')
    third = kiln("vulndb", "update", "debian")
    assert third.exit_code == 0 and "debian: 2 records imported" in third.stdout
    assert ids() == ["DSA-1-1", "DSA-2-1"]
    assert http_server.statuses("/Debian/all.zip") == [200, 304, 200]


def test_a_download_that_breaks_off_imports_nothing(kiln: Kiln, http_server: LoopbackServer) -> None:
    body = zipped(SECOND)
    http_server.files["/all.zip"] = Served(body[: len(body) // 2], etag='"cut"', declared_length=len(body))
    broken = kiln("vulndb", "import", f"{http_server.url}/all.zip", "--source", "debian")
    assert broken.exit_code == 1 and f"{http_server.url}/all.zip: the download" in broken.stderr
    http_server.files["/all.zip"] = Served(body[: len(body) // 2], etag='"partial"')  # a partial file, served whole
    done = kiln("vulndb", "import", f"{http_server.url}/all.zip", "--source", "debian")
    assert done.exit_code == 1
    assert f"{http_server.url}/all.zip: not a zip archive (corrupt or partial download)" in done.stderr
    assert ids() == [] and json.loads(kiln("vulndb", "status", "--output", "json").stdout)["Sources"] == []


def test_update_errors_are_one_line(kiln: Kiln, http_server: LoopbackServer) -> None:
    nothing = kiln("vulndb", "update")
    assert nothing.exit_code == 1 and "no advisory sources are configured" in nothing.stderr
    assert kiln("vulndb", "source", "add", "gone", f"{http_server.url}/missing.zip").exit_code == 0
    missing = kiln("vulndb", "update")
    assert missing.exit_code == 1 and f"{http_server.url}/missing.zip: HTTP 404" in missing.stderr
    bad = kiln("vulndb", "source", "add", "x", "ftp://example.org/all.zip")
    assert bad.exit_code == 1 and "is not an http:// or https:// URL" in bad.stderr
    unknown = kiln("vulndb", "update", "nope")
    assert unknown.exit_code == 1 and "no advisory source 'nope'" in unknown.stderr


def test_update_reports_download_progress(http_server: LoopbackServer) -> None:
    from kiln.services.scanning import advisories, config

    body = zipped(SECOND)
    http_server.files["/all.zip"] = Served(body, etag='"p"')
    config.add_source("debian", f"{http_server.url}/all.zip")
    seen: dict[str, list[tuple[int, int | None]]] = {}
    def progress_for(name: str) -> Any:
        return lambda done, total: seen.setdefault(name, []).append((done, total))

    results = advisories.update(progress_for=progress_for)
    assert [r.records for r in results] == [2]
    assert seen["debian"][-1] == (len(body), len(body))
    assert [done for done, _ in seen["debian"]] == sorted(done for done, _ in seen["debian"])
