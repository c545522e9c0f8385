"""``kiln vulndb import|update|status``: OSV advisory records by source.

An import reads and checks every record first (``osv_schema.check_record``), then replaces the source's
records in ONE transaction: a bad record imports nothing, and the error names the file, the record id and
why. A record identical (by digest) to the one the source already holds was checked when it came in and
is not checked again, so a daily update costs what changed. ``update`` fetches each configured source
with a conditional request; a 304 changes nothing but the time it was checked.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select

from kiln.db.base import clock_now, utcnow
from kiln.db.tables.vulndb import VulnPackageRow, VulnRecordRow, VulnSourceRow
from kiln.errors import InvalidInput, NotFound
from kiln.home import cache_dir
from kiln.services.common.unit import unit_of_work
from kiln.services.scanning import config, generation
from kiln.services.scanning.http_fetch import Progress, Validators, fetch
from kiln.services.scanning.osv_files import read_records
from kiln.services.scanning.osv_schema import check_record

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ImportResult:
    source: str
    location: str
    records: int
    ecosystems: dict[str, int] = field(default_factory=dict)
    changed: bool = True  # False: the server said the data has not changed (nothing was imported)
    checked: int = 0  # records checked against the schema (the others were unchanged)

    def as_json(self) -> dict[str, Any]:
        return {"Source": self.source, "Location": self.location, "Records": self.records,
                "Ecosystems": self.ecosystems, "Changed": self.changed, "Checked": self.checked}


@dataclass
class _Loaded:
    records: list[dict[str, Any]] = field(default_factory=list)
    packages: list[dict[str, str]] = field(default_factory=list)
    ecosystems: Counter[str] = field(default_factory=Counter)
    checked: int = 0

    def result(self, source: str, location: str) -> ImportResult:
        return ImportResult(source, location, len(self.records), dict(sorted(self.ecosystems.items())),
                            checked=self.checked)


def default_source_name(location: str) -> str:
    """``…/Debian/all.zip`` → ``Debian``; ``./alpine-osv.zip`` → ``alpine-osv``."""
    path = urllib.parse.urlsplit(location).path if _is_url(location) else location
    pure = Path(path.rstrip("/"))
    stem = pure.name.split(".", 1)[0]
    if stem.lower() == "all" and pure.parent.name:
        stem = pure.parent.name
    return _UNSAFE.sub("-", stem).strip("-._")[:128] or "osv"


def _is_url(location: str) -> bool:
    return urllib.parse.urlsplit(location).scheme in ("http", "https")


def _digest(record: Any) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _known_digests(source: str) -> dict[str, str]:
    with unit_of_work() as db:
        rows = db.execute(select(VulnRecordRow.id, VulnRecordRow.digest).where(VulnRecordRow.source == source))
        return {record_id: digest for record_id, digest in rows}


def _load(path: Path, source: str, label: str | None = None) -> _Loaded:
    loaded = _Loaded()
    seen: dict[str, str] = {}
    known = _known_digests(source)
    for where, record in read_records(path, label):
        digest = _digest(record)
        if isinstance(record, dict) and known.get(record.get("id")) == digest:  # type: ignore[arg-type]
            record_id = str(record["id"])
        else:
            record_id = check_record(record, where)
            loaded.checked += 1
        if record_id in seen:
            raise InvalidInput(f"record {record_id} appears twice (also in {seen[record_id]})", location=where)
        seen[record_id] = where
        loaded.records.append({"source": source, "id": record_id, "modified": record["modified"],
                               "digest": digest, "record": record})
        named = {(a["package"]["ecosystem"], a["package"]["name"])
                 for a in record.get("affected") or [] if a.get("package")}
        for ecosystem, package in sorted(named):
            loaded.packages.append({"source": source, "record_id": record_id, "ecosystem": ecosystem,
                                    "package": package})
        loaded.ecosystems.update({ecosystem for ecosystem, _ in named})
    if not loaded.records:
        raise InvalidInput("no OSV records found", location=label or str(path))
    return loaded


_CHUNK = 500  # ids per IN (...) clause


def _store(source: str, location: str, loaded: _Loaded, validators: Validators) -> None:
    """The source's records become ``loaded``'s: rows of records that changed or went away are deleted,
    new and changed ones inserted, identical ones left as they are (one transaction)."""
    now = utcnow()
    with unit_of_work() as db:
        current = dict(db.execute(select(VulnRecordRow.id, VulnRecordRow.digest)
                                  .where(VulnRecordRow.source == source)).all())
        incoming = {record["id"]: record["digest"] for record in loaded.records}
        stale = [record_id for record_id, digest in current.items() if incoming.get(record_id) != digest]
        fresh = {record_id for record_id, digest in incoming.items() if current.get(record_id) != digest}
        for start in range(0, len(stale), _CHUNK):
            chunk = stale[start:start + _CHUNK]
            db.execute(delete(VulnPackageRow).where(VulnPackageRow.source == source,
                                                    VulnPackageRow.record_id.in_(chunk)))
            db.execute(delete(VulnRecordRow).where(VulnRecordRow.source == source, VulnRecordRow.id.in_(chunk)))
        row = db.get(VulnSourceRow, source)
        if row is None:
            row = VulnSourceRow(name=source)
            db.add(row)
        row.location, row.record_count, row.imported_at, row.checked_at = location, len(loaded.records), now, now
        row.etag, row.last_modified = validators.etag, validators.last_modified
        db.flush()
        records = [record for record in loaded.records if record["id"] in fresh]
        packages = [package for package in loaded.packages if package["record_id"] in fresh]
        if records:
            db.execute(insert(VulnRecordRow), records)
        if packages:
            db.execute(insert(VulnPackageRow), packages)
        if stale or records:
            generation.bump(db)  # cached advisory indexes of every process are stale from the commit on


def import_advisories(location: str, *, source: str | None = None, progress: Progress | None = None) -> ImportResult:
    """Import OSV data from a path (zip, directory, JSON file) or an http(s) URL, replacing ``source``'s."""
    name = config.check_name(source, "--source") if source else default_source_name(location)
    if not _is_url(location):
        loaded = _load(Path(location), name)
        _store(name, str(Path(location).resolve()), loaded, Validators())
        return loaded.result(name, location)
    with _download_dir() as directory:
        target = directory / "download"
        fetched = fetch(config.check_url(location, "URL"), target, progress=progress)
        loaded = _load(target, name, location)
        _store(name, location, loaded, fetched.validators)
    return loaded.result(name, location)


@contextmanager
def _download_dir() -> Iterator[Path]:
    """A directory under the cache for one download, removed afterwards whatever happens."""
    base = cache_dir() / "vulndb"
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=base, prefix="download-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def update(names: list[str] | None = None, *,
           progress_for: Callable[[str], Progress | None] = lambda name: None) -> list[ImportResult]:
    """Fetch every configured source (or those named) with a conditional request; import what changed."""
    configured = config.sources()
    if not configured and not names:
        raise NotFound("no advisory sources are configured",
                       hint="kiln vulndb source add NAME URL (e.g. an OSV export's all.zip)")
    for name in names or []:
        if name not in configured:
            raise NotFound(f"no advisory source {name!r} is configured", hint="kiln vulndb source list")
    results = []
    for name in names or sorted(configured):
        results.append(_update_one(name, configured[name], progress_for(name)))
    return results


def _update_one(name: str, url: str, progress: Progress | None) -> ImportResult:
    with unit_of_work() as db:
        row = db.get(VulnSourceRow, name)
        previous = Validators(row.etag, row.last_modified) if row is not None and row.location == url else Validators()
    with _download_dir() as directory:
        target = directory / "download"
        fetched = fetch(url, target, previous, progress=progress)
        if not fetched.changed:
            with unit_of_work() as db:
                kept = db.get(VulnSourceRow, name)
                assert kept is not None  # validators come only from a stored row
                kept.checked_at = utcnow()
                return ImportResult(name, url, kept.record_count, changed=False)
        loaded = _load(target, name, url)
        _store(name, url, loaded, fetched.validators)
    return loaded.result(name, url)


def status() -> dict[str, Any]:
    """Every source (imported or configured): records per ecosystem, last import and its age."""
    now = clock_now()
    configured = config.sources()
    with unit_of_work() as db:
        rows = db.scalars(select(VulnSourceRow).order_by(VulnSourceRow.name)).all()
        counts = db.execute(select(VulnPackageRow.source, VulnPackageRow.ecosystem,
                                   func.count(func.distinct(VulnPackageRow.record_id)))
                            .group_by(VulnPackageRow.source, VulnPackageRow.ecosystem)).all()
        by_source: dict[str, dict[str, int]] = {}
        for source, ecosystem, count in counts:
            by_source.setdefault(source, {})[ecosystem] = count
        entries = [{
            "Name": row.name, "Location": row.location, "ConfiguredUrl": configured.get(row.name),
            "Records": row.record_count, "Ecosystems": by_source.get(row.name, {}),
            "ImportedAt": row.imported_at.isoformat(),
            "AgeDays": round((now - row.imported_at).total_seconds() / 86400, 2),
            "CheckedAt": row.checked_at.isoformat() if row.checked_at else None,
        } for row in rows]
    imported = {entry["Name"] for entry in entries}
    entries += [{"Name": name, "Location": None, "ConfiguredUrl": url, "Records": 0, "Ecosystems": {},
                 "ImportedAt": None, "AgeDays": None, "CheckedAt": None}
                for name, url in sorted(configured.items()) if name not in imported]
    return {"Sources": entries, "Records": sum(entry["Records"] for entry in entries)}
