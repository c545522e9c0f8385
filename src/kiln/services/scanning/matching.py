"""Findings: which installed packages an advisory affects, by OSV's evaluation (``versions`` list or
ECOSYSTEM ranges of introduced/fixed/last_affected/limit events) in the ecosystem's own version order.

- Debian and Ubuntu records name *source* packages: a binary package is looked up by its source name
  and compared with its source version (a binNMU's ``+b1`` is not a fix).
- Other families are looked up by source name and, when it differs, by binary name.
- A record with no ``fixed`` event past the installed version is "no fix yet"; a state the record gives
  (``ecosystem_specific``/``database_specific`` ``status``: ``will_not_fix``, ``deferred``, ``ignored``,
  ``postponed``…; Debian's ``unimportant`` urgency) is reported as such — never as fixed.
- "Fix available since" is the advisory's ``published`` time (OSV gives events no dates; for DSA, DLA
  and USN records that is when the fixed package shipped), else its ``modified`` time.
- A package whose ecosystem has no advisory data, or whose versions kiln cannot order (an ecosystem
  without a known order, or an installed version that does not parse in it), is *unknown*.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kiln.errors import InvalidInput
from kiln.model.packages import InstalledPackage
from kiln.services.scanning.index import AdvisoryIndex, Entry
from kiln.services.scanning.severity import Severity, severity_of
from kiln.services.scanning.versions import DPKG, order_of, version_key

FIXED = "FIX_AVAILABLE"
NO_FIX_YET = "NO_FIX_YET"
WILL_NOT_FIX = "WILL_NOT_FIX"
FIX_DEFERRED = "FIX_DEFERRED"
_STATES = {
    "will_not_fix": WILL_NOT_FIX, "wont_fix": WILL_NOT_FIX, "wont-fix": WILL_NOT_FIX, "ignored": WILL_NOT_FIX,
    "unimportant": WILL_NOT_FIX, "fix_deferred": FIX_DEFERRED, "deferred": FIX_DEFERRED,
    "postponed": FIX_DEFERRED, "no-dsa": FIX_DEFERRED, "no_dsa": FIX_DEFERRED,
}


@dataclass(slots=True)
class Finding:
    vulnerability_id: str
    aliases: tuple[str, ...]  # CVE ids and other names of the same vulnerability
    package: InstalledPackage
    installed_version: str  # the version compared (the source version for Debian and Ubuntu)
    fixed_version: str | None  # None: no fix yet
    fix_state: str  # FIX_AVAILABLE | NO_FIX_YET | WILL_NOT_FIX | FIX_DEFERRED
    severity: Severity
    fix_available_since: datetime | None
    source: str  # the advisory source it came from
    summary: str = ""

    @property
    def fix_available(self) -> bool:
        return self.fix_state == FIXED

    def as_json(self) -> dict[str, Any]:
        return {
            "vulnerabilityId": self.vulnerability_id, "aliases": list(self.aliases),
            "package": self.package.as_json(), "installedVersion": self.installed_version,
            "fixedVersion": self.fixed_version, "fixAvailable": "YES" if self.fix_available else "NO",
            "fixState": self.fix_state, "severity": self.severity.label,
            "severitySource": self.severity.source, "cvssScore": self.severity.score,
            "cvssVector": self.severity.vector,
            "fixAvailableSince": self.fix_available_since.isoformat() if self.fix_available_since else None,
            "source": self.source, "summary": self.summary,
        }


@dataclass(frozen=True)
class ScanOutcome:
    findings: list[Finding]
    unknown: list[InstalledPackage] = field(default_factory=list)  # no advisory data: not "clean"
    scanned: int = 0

    @property
    def unknown_ecosystems(self) -> list[str]:
        return sorted({package.ecosystem or "(unknown ecosystem)" for package in self.unknown})


def findings_for(packages: Iterable[InstalledPackage], *, db: AdvisoryIndex) -> list[Finding]:
    """The findings of ``packages`` against the advisory index ``db`` (see ``scan`` for unknowns)."""
    return scan(packages, db=db).findings


def scan(packages: Iterable[InstalledPackage], *, db: AdvisoryIndex) -> ScanOutcome:
    findings: list[Finding] = []
    unknown: list[InstalledPackage] = []
    count = 0
    for package in packages:
        count += 1
        order = order_of(package.ecosystem) if package.ecosystem else None
        if order is None or not db.covers(package.ecosystem):
            unknown.append(package)
            continue
        try:
            findings.extend(_package_findings(package, order, db))
        except InvalidInput:  # an installed version its ecosystem cannot order: not checked, so unknown
            unknown.append(package)
    return ScanOutcome(findings, unknown, count)


def _lookups(package: InstalledPackage, order: str) -> list[tuple[str, str]]:
    """(name, version) pairs to look the package up by."""
    source = (package.source_name or package.name, package.source_version or package.version)
    if order == DPKG or source[0] == package.name:
        return [source]
    return [source, (package.name, package.version)]


def _package_findings(package: InstalledPackage, order: str, db: AdvisoryIndex) -> list[Finding]:
    found: dict[str, Finding] = {}
    for name, version in _lookups(package, order):
        entries = db.entries(package.ecosystem, name)
        if not entries:
            continue
        installed = version_key(order, version, where=f"{package.name} {version}")
        for entry in entries:
            if entry.record["id"] in found or entry.order != order:
                continue
            hit = _affects(entry, installed)
            if hit is not None:
                found[entry.record["id"]] = _finding(entry, package, version, hit)
    return list(found.values())


def _affects(entry: Entry, installed: Any) -> tuple[str | None] | None:
    """None when not affected; else (the fixed version past ``installed``, or None). Keys are compared
    with ``<`` only (see ``versions.ByLess``)."""
    spans, versions = entry.compiled()
    for span in spans:
        if span.limits and not any(limit is None or installed < limit for limit in span.limits):
            continue
        # The events are sorted: walk those at or below the installed version, one comparison each.
        vulnerable, events, stop = False, span.events, len(span.events)
        for index, (kind, _, key) in enumerate(events):
            if key is not None and installed < key:
                stop = index
                break
            if kind == "introduced":
                vulnerable = True
            elif kind == "fixed" or key < installed:  # fixed at or below, or past last_affected
                vulnerable = False
        if vulnerable:
            return (next((event.version for event in events[stop:] if event.kind == "fixed"), None),)
    if any(installed == listed for listed in versions):
        return (None,)
    return None


def _state(affected: dict[str, Any]) -> str:
    for block in ("ecosystem_specific", "database_specific"):
        for key in ("status", "fix_state", "state"):
            value = (affected.get(block) or {}).get(key)
            if isinstance(value, str) and value.strip().lower() in _STATES:
                return _STATES[value.strip().lower()]
    urgency = (affected.get("ecosystem_specific") or {}).get("urgency")
    if isinstance(urgency, str) and urgency.strip().lower().rstrip("*") == "unimportant":
        return WILL_NOT_FIX
    return NO_FIX_YET


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class _Facts:
    """What a finding takes from its record, worked out once per record entry (binaries share it)."""

    severity: Severity
    aliases: tuple[str, ...]
    since: datetime | None


def _facts(entry: Entry) -> _Facts:
    if entry.facts is None:
        record, affected = entry.record, entry.affected
        entry.facts = _Facts(
            severity=severity_of(record, affected),
            aliases=tuple(dict.fromkeys([*(record.get("aliases") or []), *(record.get("upstream") or [])])),
            since=_when(record.get("published")) or _when(record.get("modified")))
    return entry.facts  # type: ignore[no-any-return]


def _finding(entry: Entry, package: InstalledPackage, version: str, hit: tuple[str | None]) -> Finding:
    facts, fixed = _facts(entry), hit[0]
    return Finding(
        vulnerability_id=entry.record["id"], aliases=facts.aliases, package=package, installed_version=version,
        fixed_version=fixed, fix_state=FIXED if fixed else _state(entry.affected), severity=facts.severity,
        fix_available_since=facts.since if fixed else None, source=entry.source,
        summary=entry.record.get("summary") or "",
    )
