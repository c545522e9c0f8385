"""Pending security updates, live: an image's Debian/Ubuntu packages against the distribution's security
suite index (``bookworm-security``, ``jammy-security``…) from the configured mirror, cached in
``KILN_HOME/cache/security-suites`` and refreshed with conditional requests. Every version kiln sees in a
suite is recorded with the time it first saw it: "pending since" is that time.

Without the network a cached index still answers (``stale``); without one the packages are unknown.
"""

from __future__ import annotations

import io
import lzma
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from kiln.db.base import utcnow
from kiln.db.tables.vulndb import SuiteVersionRow
from kiln.errors import InvalidInput
from kiln.home import cache_dir
from kiln.model.packages import InstalledPackage
from kiln.services.common.unit import unit_of_work
from kiln.services.scanning import config
from kiln.services.scanning.http_fetch import FetchFailed, Progress, cached_fetch
from kiln.services.scanning.index import ecosystem_key
from kiln.services.scanning.versions import DPKG, dpkg_key, version_key

# distro-info-data: release → codename (the suites kiln knows; others are "unknown").
DEBIAN_CODENAMES = {"10": "buster", "11": "bullseye", "12": "bookworm", "13": "trixie", "14": "forky"}
UBUNTU_CODENAMES = {"18.04": "bionic", "20.04": "focal", "22.04": "jammy", "24.04": "noble",
                    "24.10": "oracular", "25.04": "plucky", "25.10": "questing"}
UBUNTU_MAIN_ARCHES = {"amd64", "i386"}  # the others live on ports.ubuntu.com
DEBIAN_COMPONENTS = ("main",)
UBUNTU_COMPONENTS = ("main", "universe")


@dataclass(frozen=True)
class Suite:
    archive: str  # the mirror's name in vulndb.json: debian-security, ubuntu-security, ubuntu-ports-security
    name: str  # bookworm-security, buster/updates, jammy-security
    components: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.archive} {self.name}"

    def index_url(self, component: str, arch: str) -> str:
        return f"{config.mirror(self.archive)}/dists/{self.name}/{component}/binary-{arch}/Packages.xz"

    def cache_path(self, component: str, arch: str) -> Path:
        return cache_dir() / "security-suites" / self.archive / self.name / component / f"binary-{arch}" / "Packages.xz"


def suite_for(ecosystem: str, arch: str) -> Suite | None:
    family, release = ecosystem_key(ecosystem)
    if family == "Debian" and release in DEBIAN_CODENAMES:
        codename = DEBIAN_CODENAMES[release]
        return Suite("debian-security", f"{codename}/updates" if int(release) <= 10 else f"{codename}-security",
                     DEBIAN_COMPONENTS)
    if family == "Ubuntu" and release in UBUNTU_CODENAMES:
        archive = "ubuntu-security" if arch in UBUNTU_MAIN_ARCHES else "ubuntu-ports-security"
        return Suite(archive, f"{UBUNTU_CODENAMES[release]}-security", UBUNTU_COMPONENTS)
    return None


@dataclass(frozen=True)
class PendingUpdate:
    package: InstalledPackage
    installed_version: str
    available_version: str
    suite: str
    first_seen: datetime  # when kiln first saw the available version in the suite

    def as_json(self) -> dict[str, Any]:
        return {"package": self.package.as_json(), "installedVersion": self.installed_version,
                "availableVersion": self.available_version, "suite": self.suite,
                "firstSeen": self.first_seen.isoformat()}


@dataclass
class PendingReport:
    updates: list[PendingUpdate] = field(default_factory=list)
    unknown: list[InstalledPackage] = field(default_factory=list)  # no suite kiln can check them against
    indexes: list[dict[str, Any]] = field(default_factory=list)  # what was read: URL, changed, stale

    def as_json(self) -> dict[str, Any]:
        return {"PendingUpdates": [u.as_json() for u in self.updates],
                "Unknown": [p.as_json() for p in self.unknown], "Indexes": self.indexes}


Newest = dict[str, tuple[str, Any]]  # package → (version, dpkg key)


def read_index(path: Path) -> Newest:
    """The newest version of each package in a ``Packages.xz`` index."""
    from debian.deb822 import Packages

    newest: Newest = {}
    with lzma.open(path) as compressed:
        data = compressed.read()
    for paragraph in Packages.iter_paragraphs(io.BytesIO(data), use_apt_pkg=False,
                                              fields=["Package", "Version"]):
        name, version = paragraph.get("Package"), paragraph.get("Version")
        if not name or not version:
            continue
        key = dpkg_key(version)
        if name not in newest or key > newest[name][1]:
            newest[name] = (version, key)
    return newest


def _record_seen(suite: str, newest: Newest) -> dict[tuple[str, str], datetime]:
    """First-seen times of the index's versions, recording the ones kiln had not seen."""
    with unit_of_work() as db:
        seen = {(row.package, row.version): row.first_seen for row in
                db.scalars(select(SuiteVersionRow).where(SuiteVersionRow.suite == suite))}
        now = utcnow()
        new = [{"suite": suite, "package": name, "version": version, "first_seen": now}
               for name, (version, _) in newest.items() if (name, version) not in seen]
        if new:
            db.execute(insert(SuiteVersionRow), new)
            seen.update({(row["package"], row["version"]): now for row in new})
    return seen


def _load_suite(suite: Suite, arch: str, progress: Progress | None,
                report: PendingReport) -> tuple[Newest, dict[tuple[str, str], datetime]]:
    newest: Newest = {}
    for component in suite.components:
        url, path = suite.index_url(component, arch), suite.cache_path(component, arch)
        try:
            fetched = cached_fetch(url, path, progress=progress)
            report.indexes.append({"url": url, "changed": fetched.changed, "stale": False})
        except FetchFailed as error:
            if not path.is_file():
                raise
            report.indexes.append({"url": url, "changed": False, "stale": True, "error": str(error)})
        for name, entry in read_index(path).items():
            if name not in newest or entry[1] > newest[name][1]:
                newest[name] = entry
    return newest, _record_seen(suite.key, newest)


def primary_arch(packages: Iterable[InstalledPackage]) -> str:
    arches = Counter(p.architecture for p in packages if p.architecture and p.architecture != "all")
    return arches.most_common(1)[0][0] if arches else "amd64"


def pending_updates(packages: list[InstalledPackage], *,
                    progress_for: Callable[[str], Progress | None] = lambda url: None) -> PendingReport:
    """Each Debian/Ubuntu package with a newer version in its release's security suite."""
    report = PendingReport()
    default_arch = primary_arch(packages)
    loaded: dict[tuple[str, str], tuple[Newest, dict[tuple[str, str], datetime]]] = {}
    for package in packages:
        arch = default_arch if package.architecture in ("", "all") else package.architecture
        suite = suite_for(package.ecosystem, arch) if package.ecosystem else None
        if suite is None:
            report.unknown.append(package)
            continue
        if (suite.key, arch) not in loaded:
            progress = progress_for(suite.index_url(suite.components[0], arch))
            loaded[(suite.key, arch)] = _load_suite(suite, arch, progress, report)
        newest, seen = loaded[(suite.key, arch)]
        available = newest.get(package.name)
        if available is None:
            continue
        try:
            installed = version_key(DPKG, package.version, where=f"{package.name} {package.version}")
        except InvalidInput:  # not a Debian version: cannot be compared, so unknown
            report.unknown.append(package)
            continue
        if available[1] > installed:
            report.updates.append(PendingUpdate(package, package.version, available[0], suite.key,
                                                seen[(package.name, available[0])]))
    return report
