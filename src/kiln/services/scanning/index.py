"""Advisory records indexed once by (ecosystem, package), each entry compiled to version keys the first
time a package asks for it: a scan touches only the buckets of the packages it has.

Ecosystems compare by family and release: OSV's ``Ubuntu:22.04:LTS`` is an inventory's ``Ubuntu:22.04``;
``Ubuntu:Pro:…`` records (fixes only Ubuntu Pro delivers) are their own family; ``Alpine:v3.19`` and
``Alpine:3.19`` are one release; a record without a release applies to every release of its family.
"""

from __future__ import annotations

import json
import threading
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
    """Records by (ecosystem key, package name); which ecosystems have any data at all.

    An index loaded from the database holds each bucket's records as JSON text until a package asks for
    that bucket (a scan decodes only the records of the packages it has); ``load`` keeps the index of
    each set of ecosystem families for the process while the advisory data's generation stays the same.
    """

    def __init__(self) -> None:
        self._buckets: dict[tuple[EcosystemKey, str], list[Entry]] = defaultdict(list)
        self.ecosystems: set[EcosystemKey] = set()
        self._pending: dict[tuple[EcosystemKey, str], dict[tuple[str, str], str]] = {}
        self._lock = threading.Lock()

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
        buckets, ecosystems = self._buckets, self.ecosystems
        for affected in record.get("affected") or ():
            package = affected.get("package")
            if not package:
                continue
            ecosystem = package["ecosystem"]
            key = ecosystem_key(ecosystem)
            ecosystems.add(key)
            buckets[(key, package["name"])].append(Entry(record, affected, order_of(ecosystem), source))

    @property
    def buckets(self) -> dict[tuple[EcosystemKey, str], list[Entry]]:
        """Every bucket, each record decoded (for inspection; scans decode only what they look up)."""
        for key in list(self._pending):
            self._bucket(key)
        return self._buckets

    def covers(self, ecosystem: str) -> bool:
        family, release = ecosystem_key(ecosystem)
        return bool(family) and ((family, release) in self.ecosystems or (family, "") in self.ecosystems)

    def entries(self, ecosystem: str, name: str) -> list[Entry]:
        family, release = ecosystem_key(ecosystem)
        found = self._bucket(((family, release), name))
        if release:
            found = found + self._bucket(((family, ""), name))
        return found

    def _bucket(self, key: tuple[EcosystemKey, str]) -> list[Entry]:
        found = self._buckets.get(key)
        if found is not None or key not in self._pending:
            # a bucket is stored before it leaves _pending, so this second read sees one just decoded
            return found if found is not None else self._buckets.get(key, [])
        with self._lock:  # scans in worker threads share a cached index
            pending = self._pending.get(key)
            if pending is not None:
                decoded: list[Entry] = []
                for (source, _), text in pending.items():
                    _add_matching(decoded, source, json.loads(text), key)
                self._buckets[key] = decoded
                del self._pending[key]
        return self._buckets.get(key, [])

    @classmethod
    def load(cls, ecosystems: Iterable[str] | None = None, *, db: Session | None = None) -> AdvisoryIndex:
        """The imported records (of the given ecosystems' families, or all) from the database: the
        process's index of those families while the data's generation is unchanged, else read anew."""
        from kiln.services.common.unit import unit_of_work
        from kiln.services.scanning.generation import current

        families = None if ecosystems is None else frozenset({ecosystem_key(e)[0] for e in ecosystems} - {""})
        with unit_of_work(db) as session:
            stamp = (str(session.get_bind().url), *current(session))
            with _CACHE_LOCK:
                if _CACHE.get("stamp") != stamp:
                    _CACHE.clear()
                    _CACHE["stamp"] = stamp
                cached = _CACHE.get(families)
            if isinstance(cached, AdvisoryIndex):
                return cached
            index = cls._read(session, families)
        with _CACHE_LOCK:
            if _CACHE.get("stamp") == stamp:
                _CACHE[families] = index
        return index

    @classmethod
    def _read(cls, session: Session, families: frozenset[str] | None) -> AdvisoryIndex:
        """One query: each (ecosystem, package) a record names, with the record's JSON text (not decoded)."""
        from sqlalchemy import Text, cast, select

        from kiln.db.tables.vulndb import VulnPackageRow, VulnRecordRow

        index = cls()
        query = (select(VulnPackageRow.ecosystem, VulnPackageRow.package, VulnPackageRow.source,
                        VulnPackageRow.record_id, cast(VulnRecordRow.record, Text))
                 .join(VulnRecordRow, (VulnRecordRow.source == VulnPackageRow.source)
                       & (VulnRecordRow.id == VulnPackageRow.record_id)))
        if families is not None:
            wanted = [ecosystem for ecosystem, in session.execute(select(VulnPackageRow.ecosystem).distinct())
                      if ecosystem_key(ecosystem)[0] in families]
            query = query.where(VulnPackageRow.ecosystem.in_(wanted))
        pending = index._pending
        for ecosystem, package, source, record_id, text in session.execute(query):
            key = ecosystem_key(ecosystem)
            index.ecosystems.add(key)
            pending.setdefault((key, package), {})[(source, record_id)] = text
        return index


def _add_matching(entries: list[Entry], source: str, record: dict[str, Any], key: tuple[EcosystemKey, str]) -> None:
    """The record's entries that name the bucket's (ecosystem key, package); none for a withdrawn one."""
    if record.get("withdrawn"):
        return
    for affected in record.get("affected") or []:
        package = affected.get("package")
        if package and package["name"] == key[1] and ecosystem_key(package["ecosystem"]) == key[0]:
            entries.append(Entry(record, affected, order_of(package["ecosystem"]), source))


# The process's advisory indexes: "stamp" (database, its token and generation) -> the index of each
# set of ecosystem families (None: all) read at that stamp.
_CACHE: dict[Any, Any] = {}
_CACHE_LOCK = threading.Lock()
