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
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from kiln.services.scanning.versions import order_of, version_key

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

EcosystemKey = tuple[str, str]  # (family, release)


@lru_cache(maxsize=1024)
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


class Event(NamedTuple):
    kind: str  # introduced | fixed | last_affected
    version: str
    key: Any  # None: introduced "0", before everything


class Span(NamedTuple):
    """One ECOSYSTEM range: its events in the ecosystem's order, and its limits."""

    events: tuple[Event, ...]
    limits: tuple[Any, ...]  # keys; None is "*" (no limit); empty: the implicit "*"


@dataclass(slots=True)
class Entry:
    """One ``affected[]`` entry of one record, its ECOSYSTEM ranges compiled on first use."""

    record: dict[str, Any]
    affected: dict[str, Any]
    order: str | None
    source: str
    spans: list[Span] | None = None
    versions: list[Any] | None = None
    facts: Any = None  # what matching derives from the record once (severity, aliases, dates)

    def compiled(self) -> tuple[list[Span], list[Any]]:
        if self.spans is None or self.versions is None:
            assert self.order is not None
            self.spans = [_span(self.order, span["events"]) for span in self.affected.get("ranges") or []
                          if span.get("type") == "ECOSYSTEM"]
            self.versions = [version_key(self.order, v) for v in self.affected.get("versions") or []]
        return self.spans, self.versions


def _span(order: str, events: list[dict[str, str]]) -> Span:
    walk: list[Event] = []
    limits: list[Any] = []
    for event in events:
        (kind, version), = event.items()
        if kind == "limit":
            limits.append(None if "*" in version else version_key(order, version))
        elif kind == "introduced" and version == "0":
            walk.insert(0, Event(kind, version, None))
        else:
            walk.append(Event(kind, version, version_key(order, version)))
    if len(walk) > 2 or (len(walk) == 2 and walk[0].key is not None):
        # "0" first, then the ecosystem's order (version keys order among themselves only)
        walk = [e for e in walk if e.key is None] + sorted((e for e in walk if e.key is not None), key=_by_key)
    return Span(tuple(walk), tuple(limits))


def _by_key(event: Event) -> Any:
    return event.key


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
