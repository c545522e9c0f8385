"""Advisory records indexed once by (ecosystem, package), each entry compiled to version keys the first
time a package asks for it: a scan touches only the buckets of the packages it has.

Ecosystems compare by family and release: OSV's ``Ubuntu:22.04:LTS`` is an inventory's ``Ubuntu:22.04``;
``Ubuntu:Pro:…`` records (fixes only Ubuntu Pro delivers) are their own family; ``Alpine:v3.19`` and
``Alpine:3.19`` are one release; a record without a release applies to every release of its family.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kiln.services.scanning.versions import order_of, version_key

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

EcosystemKey = tuple[str, str]  # (family, release)


def ecosystem_key(ecosystem: str) -> EcosystemKey:
    parts = [part for part in ecosystem.split(":") if part]
    if not parts:
        return ("", "")
    family, rest = parts[0], parts[1:]
    if family == "Ubuntu":
        if rest[:1] == ["Pro"]:
            family, rest = "Ubuntu:Pro", rest[1:]
        rest = [part for part in rest if part != "LTS"]
    release = ":".join(rest)
    if family == "Alpine":
        release = release.removeprefix("v")
    return (family, release)


@dataclass(frozen=True)
class Event:
    kind: str  # introduced | fixed | last_affected | limit
    version: str
    key: Any  # None: "0" (before everything) or "*" (after everything)


@dataclass
class Entry:
    """One ``affected[]`` entry of one record, its ECOSYSTEM ranges compiled on first use."""

    record: dict[str, Any]
    affected: dict[str, Any]
    order: str | None
    source: str
    _ranges: list[list[Event]] | None = None
    _versions: list[Any] | None = None

    def compiled(self) -> tuple[list[list[Event]], list[Any]]:
        if self._ranges is None:
            assert self.order is not None
            self._ranges = [_events(self.order, span["events"]) for span in self.affected.get("ranges") or []
                            if span.get("type") == "ECOSYSTEM"]
            self._versions = [version_key(self.order, v) for v in self.affected.get("versions") or []]
        assert self._versions is not None
        return self._ranges, self._versions


def _events(order: str, events: list[dict[str, str]]) -> list[Event]:
    compiled = []
    for event in events:
        (kind, version), = event.items()
        special = (kind == "introduced" and version == "0") or (kind == "limit" and "*" in version)
        compiled.append(Event(kind, version, None if special else version_key(order, version)))
    return _in_order(compiled)


def _in_order(events: list[Event]) -> list[Event]:
    """"0" first, then the ecosystem's order, "*" limits last (version keys order among themselves only)."""
    first = [event for event in events if event.key is None and event.kind != "limit"]
    last = [event for event in events if event.key is None and event.kind == "limit"]
    middle = sorted((event for event in events if event.key is not None), key=lambda event: event.key)
    return first + middle + last


class AdvisoryIndex:
    """Records by (ecosystem key, package name); which ecosystems have any data at all."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[EcosystemKey, str], list[Entry]] = defaultdict(list)
        self.ecosystems: set[EcosystemKey] = set()

    @classmethod
    def from_records(cls, records: Iterable[tuple[str, dict[str, Any]]]) -> AdvisoryIndex:
        """From (source, OSV record) pairs; withdrawn records are left out."""
        index = cls()
        for source, record in records:
            index.add(source, record)
        return index

    def add(self, source: str, record: dict[str, Any]) -> None:
        if record.get("withdrawn"):
            return
        for affected in record.get("affected") or []:
            package = affected.get("package")
            if not package:
                continue
            key = ecosystem_key(package["ecosystem"])
            self.ecosystems.add(key)
            self.buckets[(key, package["name"])].append(
                Entry(record, affected, order_of(package["ecosystem"]), source))

    def covers(self, ecosystem: str) -> bool:
        family, release = ecosystem_key(ecosystem)
        return bool(family) and ((family, release) in self.ecosystems or (family, "") in self.ecosystems)

    def entries(self, ecosystem: str, name: str) -> list[Entry]:
        family, release = ecosystem_key(ecosystem)
        found = self.buckets.get(((family, release), name), [])
        if release:
            found = found + self.buckets.get(((family, ""), name), [])
        return found

    @classmethod
    def load(cls, ecosystems: Iterable[str] | None = None, *, db: Session | None = None) -> AdvisoryIndex:
        """The imported records (of the given ecosystems' families, or all) from the database."""
        from sqlalchemy import select

        from kiln.db.tables.vulndb import VulnPackageRow, VulnRecordRow
        from kiln.services.common.unit import unit_of_work

        index = cls()
        with unit_of_work(db) as session:
            query = select(VulnRecordRow.source, VulnRecordRow.record)
            if ecosystems is not None:
                families = {ecosystem_key(e)[0] for e in ecosystems} - {""}
                wanted = {row.ecosystem for row in session.execute(select(VulnPackageRow.ecosystem).distinct())
                          if ecosystem_key(row.ecosystem)[0] in families}
                matching = (select(VulnPackageRow.source, VulnPackageRow.record_id)
                            .where(VulnPackageRow.ecosystem.in_(wanted)).distinct().subquery())
                query = query.join(matching, (matching.c.source == VulnRecordRow.source)
                                   & (matching.c.record_id == VulnRecordRow.id))
            for source, record in session.execute(query):
                index.add(source, record)
        return index
