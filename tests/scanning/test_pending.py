"""Pending security updates: installed Debian packages against the real ``bookworm-security`` index (a
package held back on purpose), and against a loopback mirror for caching, conditional requests, first-seen
times and offline use."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pytest
from tests.conftest import Kiln
from tests.scanning.conftest import LoopbackServer, Served, package

from kiln.services.scanning import config
from kiln.services.scanning.http_fetch import FetchFailed, cached_fetch
from kiln.services.scanning.security_suites import pending_updates, read_index, suite_for

INDEX = "/dists/bookworm-security/main/binary-amd64/Packages.xz"


def packages_file(tmp_path: Path, packages: list) -> Path:  # type: ignore[type-arg]
    path = tmp_path / "packages.json"
    path.write_text(json.dumps([p.as_json() for p in packages]))
    return path


@pytest.mark.network
def test_a_held_back_package_is_pending_against_the_real_security_suite(kiln: Kiln, tmp_path: Path) -> None:
    suite = suite_for("Debian:12", "amd64")
    assert suite is not None and suite.key == "debian-security bookworm-security"
    path = suite.cache_path("main", "amd64")
    cached_fetch(suite.index_url("main", "amd64"), path)
    newest = read_index(path)
    held = sorted(newest)[0]  # whatever the archive holds today: the assertion is about this package
    ahead = sorted(newest)[-1]
    packages = [package(held, "0~kiln1"), package(ahead, "99:0-1"), package("kiln-not-in-any-archive", "1.0")]

    done = kiln("vulndb", "pending", "--packages-json", str(packages_file(tmp_path, packages)), "--output", "json")
    assert done.exit_code == 0, done.stderr
    answer = json.loads(done.stdout)
    assert [(u["package"]["name"], u["installedVersion"], u["availableVersion"], u["suite"])
            for u in answer["PendingUpdates"]] == [(held, "0~kiln1", newest[held][0], suite.key)]
    first_seen = answer["PendingUpdates"][0]["firstSeen"]
    assert answer["Indexes"][0]["url"] == "https://deb.debian.org/debian-security" + INDEX

    again = json.loads(kiln("vulndb", "pending", "--packages-json", str(tmp_path / "packages.json"),
                            "--output", "json").stdout)
    assert again["PendingUpdates"][0]["firstSeen"] == first_seen  # kiln's first sighting, not the latest
    text = kiln("vulndb", "pending", "--packages-json", str(tmp_path / "packages.json")).stdout
    assert held in text and "1 pending security updates" in text


def _index(*entries: tuple[str, str]) -> bytes:
    text = "".join(f"Package: {name}\nVersion: {version}\nArchitecture: amd64\n\n" for name, version in entries)
    return lzma.compress(text.encode())


def test_the_index_is_cached_and_fetched_conditionally(http_server: LoopbackServer) -> None:
    config.set_mirror("debian-security", http_server.url)
    http_server.files[INDEX] = Served(_index(("curl", "7.88.1-10+deb12u8"), ("zlib1g", "1:1.2.13.dfsg-1")),
                                      etag='"one"')
    installed = [package("curl", "7.88.1-10+deb12u5"), package("zlib1g", "1:1.2.13.dfsg-1", source="zlib"),
                 package("musl", "1.2.4-r2", "Alpine:v3.19")]

    first = pending_updates(installed)
    assert [(u.package.name, u.available_version) for u in first.updates] == [("curl", "7.88.1-10+deb12u8")]
    assert [p.name for p in first.unknown] == ["musl"]
    seen = first.updates[0].first_seen

    second = pending_updates(installed)
    assert http_server.statuses(INDEX) == [200, 304]
    assert http_server.log[-1][2].get("If-None-Match") == '"one"'
    assert second.updates[0].first_seen == seen and second.indexes[0]["changed"] is False

    http_server.files[INDEX] = Served(_index(("curl", "7.88.1-10+deb12u9")), etag='"two"')
    third = pending_updates(installed)
    assert [(u.available_version, u.first_seen >= seen) for u in third.updates] == [("7.88.1-10+deb12u9", True)]

    config.set_mirror("debian-security", "http://127.0.0.1:9")  # nothing listens: offline
    offline = pending_updates(installed)
    assert [u.available_version for u in offline.updates] == ["7.88.1-10+deb12u9"]
    assert offline.indexes[0]["stale"] is True


def test_without_network_nor_cache_the_error_names_the_index(kiln: Kiln, tmp_path: Path) -> None:
    assert kiln("vulndb", "mirror", "set", "debian-security", "http://127.0.0.1:9").exit_code == 0
    with pytest.raises(FetchFailed) as raised:
        pending_updates([package("curl", "7.88.1-10+deb12u5")])
    assert raised.value.location == "http://127.0.0.1:9" + INDEX
    done = kiln("vulndb", "pending", "--packages-json", str(packages_file(tmp_path, [package("curl", "1.0")])))
    assert done.exit_code == 1 and "127.0.0.1:9" in done.stderr and "Traceback" not in done.stderr


def test_suites_of_each_release() -> None:
    jammy, ports, buster = suite_for("Ubuntu:22.04", "amd64"), suite_for("Ubuntu:22.04", "arm64"), \
        suite_for("Debian:10", "amd64")
    assert jammy is not None and ports is not None and buster is not None
    assert (jammy.key, ports.key, buster.key) == (
        "ubuntu-security jammy-security", "ubuntu-ports-security jammy-security", "debian-security buster/updates")
    assert jammy.index_url("main", "amd64") == "http://security.ubuntu.com/ubuntu/dists/jammy-security/main/" \
                                               "binary-amd64/Packages.xz"
    assert suite_for("Alpine:v3.19", "x86_64") is None and suite_for("Debian:99", "amd64") is None
