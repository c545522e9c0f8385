"""An image's installed packages, read from the package databases in its layers (nothing is run).

dpkg (``var/lib/dpkg/status`` and distroless ``status.d/``), RPM (``rpmdb.sqlite``, the BerkeleyDB
``Packages`` file of RPM before 4.16, SUSE's ndb ``Packages.db``) and apk
(``lib/apk/db/installed``) are read through the layer stack (``kiln.store.layer_view``: whiteouts and
opaque dirs honoured, symlinks followed inside the image). The OS release (``etc/os-release``, else
``usr/lib/os-release``) gives each package its OSV ecosystem and its purl's ``distro`` qualifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packageurl import PackageURL

from kiln.documents.executor import parse_os_release
from kiln.errors import InvalidInput
from kiln.model.packages import InstalledPackage
from kiln.store.layer_view import LayerView
from kiln.store.package_formats import RawPackage, apk, dpkg, rpm

DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_STATUS_D = "/var/lib/dpkg/status.d"
RPM_SQLITE = ("/usr/lib/sysimage/rpm/rpmdb.sqlite", "/var/lib/rpm/rpmdb.sqlite")
RPM_BDB = ("/var/lib/rpm/Packages", "/usr/lib/sysimage/rpm/Packages")  # BerkeleyDB hash (RPM before 4.16)
RPM_NDB = ("/usr/lib/sysimage/rpm/Packages.db", "/var/lib/rpm/Packages.db")  # ndb (SUSE)
APK_INSTALLED = "/lib/apk/db/installed"
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
PATHS_TRIED = (DPKG_STATUS, DPKG_STATUS_D, *RPM_SQLITE, *RPM_BDB, *RPM_NDB, APK_INSTALLED)


class NoPackageDatabase(InvalidInput):
    """The image holds none of the package databases kiln reads."""


@dataclass(frozen=True)
class OsRelease:
    id: str = ""
    version_id: str = ""
    pretty_name: str = ""
    lts: bool = False  # Ubuntu's VERSION says "LTS"

    @property
    def ecosystem(self) -> str:
        return osv_ecosystem(self)

    @property
    def distro(self) -> str:
        """The purl ``distro`` qualifier: ``debian-12``, ``alpine-3.19.1``…"""
        return f"{self.id}-{self.version_id}" if self.id and self.version_id else self.id


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def osv_ecosystem(release: OsRelease) -> str:
    """OSV's ecosystem string for the release (OSV schema's list), or "" when OSV carries none for it.

    Red Hat's OSV records name CPE-like streams (``Red Hat:enterprise_linux:9::baseos``); the prefix
    ``Red Hat:enterprise_linux:<major>`` is what an image can tell. OSV has no Amazon Linux ecosystem.
    """
    version = release.version_id
    if not version and release.id not in ("opensuse-tumbleweed", "wolfi", "chainguard"):
        return ""
    match release.id:
        case "debian":
            return f"Debian:{_major(version)}"
        case "ubuntu":
            return f"Ubuntu:{version}:LTS" if release.lts else f"Ubuntu:{version}"
        case "alpine":
            return "Alpine:v" + ".".join(version.split(".")[:2])
        case "rocky":
            return f"Rocky Linux:{_major(version)}"
        case "almalinux":
            return f"AlmaLinux:{_major(version)}"
        case "rhel":
            return f"Red Hat:enterprise_linux:{_major(version)}"
        case "opensuse-leap":
            return f"openSUSE:Leap {version}"
        case "opensuse-tumbleweed":
            return "openSUSE:Tumbleweed"
        case "mageia":
            return f"Mageia:{version}"
        case "openEuler":
            return f"openEuler:{version}"
        case "wolfi":
            return "Wolfi"
        case "chainguard":
            return "Chainguard"
    return ""


def read_os_release(view: LayerView) -> tuple[OsRelease, str]:
    """The image's OS release and the path it came from ("" when the image has none)."""
    for path in OS_RELEASE:
        data = view.read_bytes(path)
        if data is not None:
            values = parse_os_release(data.decode("utf-8", "replace"))
            return OsRelease(values.get("ID", "").lower(), values.get("VERSION_ID", ""),
                             values.get("PRETTY_NAME", ""), "LTS" in values.get("VERSION", "")), path
    return OsRelease(), ""


@dataclass(frozen=True)
class Inventory:
    """What an image has installed, and where that was read."""

    os: OsRelease
    databases: tuple[str, ...]
    packages: tuple[InstalledPackage, ...] = field(default=())

    @property
    def ecosystem(self) -> str:
        return self.os.ecosystem

    def as_json(self) -> dict[str, object]:
        return {
            "os": {"id": self.os.id, "versionId": self.os.version_id, "prettyName": self.os.pretty_name},
            "ecosystem": self.ecosystem,
            "databases": list(self.databases),
            "packages": [package.as_json() for package in self.packages],
        }


DEFAULT_NAMESPACE = {"deb": "debian", "apk": "alpine"}


def purl_of(kind: str, raw: RawPackage, release: OsRelease) -> str:
    qualifiers = {}
    if raw.architecture:
        qualifiers["arch"] = raw.architecture
    if release.distro:
        qualifiers["distro"] = release.distro
    if raw.epoch:
        qualifiers["epoch"] = raw.epoch
    if raw.upstream:
        qualifiers["upstream"] = raw.upstream
    namespace = release.id or DEFAULT_NAMESPACE.get(kind)
    return PackageURL(type=kind, namespace=namespace, name=raw.name, version=raw.version.removeprefix(
        f"{raw.epoch}:" if raw.epoch else ""), qualifiers=qualifiers).to_string()


def _installed(kind: str, raws: list[RawPackage], release: OsRelease) -> list[InstalledPackage]:
    ecosystem = release.ecosystem
    return [
        InstalledPackage(raw.name, raw.version, raw.architecture, raw.source_name, raw.source_version,
                         ecosystem, purl_of(kind, raw, release))
        for raw in raws
    ]


def _dpkg(view: LayerView) -> tuple[list[str], list[RawPackage]]:
    read: list[str] = []
    found: list[RawPackage] = []
    data = view.read_bytes(DPKG_STATUS)
    if data is not None:
        read.append(DPKG_STATUS)
        found += dpkg.parse_status(data, DPKG_STATUS)
    names = [name for name in view.listdir(DPKG_STATUS_D) if "." not in name]  # skip *.md5sums
    for name in names:
        path = f"{DPKG_STATUS_D}/{name}"
        data = view.read_bytes(path)
        if data is not None:
            found += dpkg.parse_status(data, path, require_status=False)
    if names:
        read.append(DPKG_STATUS_D)
    return read, found


def _rpm(view: LayerView) -> tuple[list[str], list[RawPackage]]:
    for path in RPM_SQLITE:
        real = view.file(path)
        if real is not None:
            wal = view.file(path + "-wal")
            return [path], rpm.parse_sqlite(real, path, wal if wal is not None and wal.stat().st_size else None)
    for path in RPM_BDB:
        data = view.read_bytes(path)
        if data is not None:
            return [path], rpm.parse_bdb(data, path)
    for path in RPM_NDB:
        data = view.read_bytes(path)
        if data is not None:
            return [path], rpm.parse_ndb(data, path)
    return [], []


def _apk(view: LayerView) -> tuple[list[str], list[RawPackage]]:
    data = view.read_bytes(APK_INSTALLED)
    if data is None:
        return [], []
    return [APK_INSTALLED], apk.parse_installed(data, APK_INSTALLED)


def read_inventory(layers: Sequence[Path], label: str = "image") -> Inventory:
    """The installed packages of the tree ``layers`` make (base first), sorted by name, version, arch.

    Raises ``NoPackageDatabase`` naming the paths tried when the image holds none of them.
    """
    view = LayerView(layers)
    release, _ = read_os_release(view)
    databases: list[str] = []
    packages: list[InstalledPackage] = []
    for kind, reader in (("deb", _dpkg), ("rpm", _rpm), ("apk", _apk)):
        read, raws = reader(view)
        databases += read
        packages += _installed(kind, raws, release)
    if not databases:
        raise NoPackageDatabase(f"no package database found in {label} (tried {', '.join(PATHS_TRIED)})")
    return Inventory(release, tuple(databases), tuple(sorted(set(packages))))
