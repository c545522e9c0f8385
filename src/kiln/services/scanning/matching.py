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

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
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
        bucket = db.memo((package.ecosystem, name, order),
                         lambda n=name: _Bucket.of(db.entries(package.ecosystem, n), order))
        if bucket is None:
            continue
        installed = version_key(order, version, where=f"{package.name} {version}")
        if bucket.broken is not None:
            _walk(bucket.broken, order, installed, package, version, found)
            continue
        for entry, fixed in bucket.hits(installed):
            facts = _facts(entry)
            if facts.id not in found:
                found[facts.id] = _finding(entry, facts, package, version, fixed)
    return list(found.values())


def _walk(entries: list[Entry], order: str, installed: Any, package: InstalledPackage, version: str,
          found: dict[str, Finding]) -> None:
    """Entry by entry, each compiled when reached: a bucket with a malformed advisory version fails (the
    package is unknown) exactly when that entry is reached."""
    for entry in entries:
        if entry.record["id"] in found or entry.order != order:
            continue
        hit = _affects(entry, installed)
        if hit is not None:
            facts = _facts(entry)
            found[facts.id] = _finding(entry, facts, package, version, hit[0])


_FROM_ZERO = {"introduced": "0"}


class _Bucket:
    """The entries a package name is looked up in, compiled once for the index: the usual entry (one range
    from "0", fixed at one version or not at all) is a boundary in a sorted list, so an installed version
    finds every such entry it is below with one bisection; any other entry is evaluated as OSV says
    (``_affects``). Hits come back in the entries' order, as the per-entry walk gives them."""

    __slots__ = ("always", "bound_hits", "bounds", "broken", "general", "sorted")

    def __init__(self) -> None:
        self.always: list[tuple[int, Entry, str | None]] = []  # affected whatever the version: no fix yet
        self.bounds: list[Any] = []  # the fixed versions' keys (sorted for dpkg keys, a total order)
        self.bound_hits: list[tuple[int, Entry, str | None]] = []  # beside bounds: hit when installed < bound
        self.general: list[tuple[int, Entry]] = []
        self.sorted = False
        self.broken: list[Entry] | None = None  # a malformed advisory version: walked entry by entry

    @classmethod
    def of(cls, entries: list[Entry], order: str) -> _Bucket | None:
        if not entries:
            return None
        bucket = cls()
        bounds: list[tuple[Any, int, Entry, str]] = []
        try:
            for index, entry in enumerate(entry for entry in entries if entry.order == order):
                fixed = _simple(entry)
                if fixed is None:
                    entry.compiled()
                    bucket.general.append((index, entry))
                elif fixed == "":
                    bucket.always.append((index, entry, None))
                else:
                    bounds.append((version_key(order, fixed), index, entry, fixed))
        except InvalidInput:
            bucket.broken = entries
            return bucket
        if order == DPKG and len(bounds) > 1:
            bounds.sort(key=_first)
            bucket.sorted = True
        bucket.bounds = [bound[0] for bound in bounds]
        bucket.bound_hits = [(index, entry, fixed) for _, index, entry, fixed in bounds]
        return bucket

    def hits(self, installed: Any) -> list[tuple[Entry, str | None]]:
        """(entry, fixed version past ``installed`` or None) of each entry that affects ``installed``."""
        if self.sorted:
            found = self.always + self.bound_hits[bisect_right(self.bounds, installed):]
        else:
            pairs = zip(self.bounds, self.bound_hits, strict=True)
            found = self.always + [hit for key, hit in pairs if installed < key]
        for index, entry in self.general:
            hit = _affects(entry, installed)
            if hit is not None:
                found.append((index, entry, hit[0]))
        if len(found) > 1:
            found.sort(key=_first)
        return [(entry, fixed) for _, entry, fixed in found]


def _simple(entry: Entry) -> str | None:
    """The fixed version of an entry whose one ECOSYSTEM range is introduced "0" then fixed at most once
    ("": no fixed event), with no ``versions`` list; None for any other entry."""
    affected = entry.affected
    ranges = affected.get("ranges")
    if affected.get("versions") or not ranges or len(ranges) != 1:
        return None
    span = ranges[0]
    events = span.get("events")
    if span.get("type") != "ECOSYSTEM" or not events or events[0] != _FROM_ZERO:
        return None
    if len(events) == 1:
        return ""
    if len(events) == 2 and len(events[1]) == 1 and isinstance(events[1].get("fixed"), str) and events[1]["fixed"]:
        return events[1]["fixed"]  # type: ignore[no-any-return]
    return None


def _first(item: tuple[Any, ...]) -> Any:
    return item[0]


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
    return _time(text) if isinstance(text, str) else None


@lru_cache(maxsize=4096)  # advisories of one batch share their dates
def _time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(slots=True)
class _Facts:
    """What a finding takes from its record, worked out once per record entry (binaries share it)."""

    id: str
    severity: Severity
    aliases: tuple[str, ...]
    since: datetime | None
    summary: str
    state: str | None = None  # the entry's state when no fix is past the installed version, on first need


def _facts(entry: Entry) -> _Facts:
    if entry.facts is None:
        record, affected = entry.record, entry.affected
        entry.facts = _Facts(
            id=record["id"], severity=severity_of(record, affected),
            aliases=tuple(dict.fromkeys([*(record.get("aliases") or []), *(record.get("upstream") or [])])),
            since=_when(record.get("published")) or _when(record.get("modified")),
            summary=record.get("summary") or "")
    return entry.facts  # type: ignore[no-any-return]


def _finding(entry: Entry, facts: _Facts, package: InstalledPackage, version: str, fixed: str | None) -> Finding:
    if fixed:
        state, since = FIXED, facts.since
    else:
        if facts.state is None:
            facts.state = _state(entry.affected)
        state, since = facts.state, None
    return Finding(
        vulnerability_id=facts.id, aliases=facts.aliases, package=package, installed_version=version,
        fixed_version=fixed, fix_state=state, severity=facts.severity, fix_available_since=since,
        source=entry.source, summary=facts.summary,
    )
