"""Matching 10,000 installed packages against 100,000 synthetic OSV advisories (goal: under 2 s), the
indexed matcher (records by (ecosystem, package), version keys computed once) against the naive one
(one pass over every advisory per package) in the same run, plus memory, and the database path: the
100,000 records imported in one transaction (then again, unchanged), read back as an index (as a fresh
process: from the database; then again: the process's cached index) and matched from it. Wall times
on a shared machine grow with its load; the CPU seconds of the indexed run are reported beside them.

The ecosystems are mixed as a fleet of images would be: 70% Debian 12, 15% Ubuntu 22.04 (dpkg order),
10% Alpine 3.19 (apk) and 5% Rocky Linux 9 (RPM). The naive matcher is timed on a sample of packages
and scaled to all of them (a full naive run is 10,000 passes over 100,000 records); both are checked to
give the same findings on the sample.
"""

from __future__ import annotations

import gc
import json
import os
import random
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

PACKAGES = int(os.environ.get("KILN_BENCH_VULN_PACKAGES", "10000"))
ADVISORIES = int(os.environ.get("KILN_BENCH_VULN_ADVISORIES", "100000"))
NAIVE_SAMPLE = 20
GOAL_SECONDS = 2.0
ECOSYSTEMS = [("Debian:12", "Debian:12", 70), ("Ubuntu:22.04", "Ubuntu:22.04:LTS", 15),
              ("Alpine:v3.19", "Alpine:v3.19", 10), ("Rocky Linux:9", "Rocky Linux:9", 5)]


def _version(rng: random.Random, ecosystem: str) -> str:
    upstream = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}"
    if ecosystem.startswith("Debian"):
        return f"{upstream}-{rng.randint(1, 5)}" + (f"+deb12u{rng.randint(1, 9)}" if rng.random() < 0.5 else "")
    if ecosystem.startswith("Ubuntu"):
        return f"{upstream}-{rng.randint(1, 5)}ubuntu0.22.04.{rng.randint(1, 9)}"
    if ecosystem.startswith("Alpine"):
        return f"{upstream}-r{rng.randint(0, 12)}"
    return f"{upstream}-{rng.randint(1, 40)}.el9"


def _data() -> tuple[list[Any], list[dict[str, Any]]]:
    from kiln.model.packages import InstalledPackage

    rng = random.Random(20)
    weights = [weight for _, _, weight in ECOSYSTEMS]
    names_per_ecosystem = max(PACKAGES // 2, 1)  # half the advisories name a package the images have
    packages = []
    for n in range(PACKAGES):
        installed, _, _ = rng.choices(ECOSYSTEMS, weights)[0]
        source = f"src{rng.randrange(names_per_ecosystem)}"
        version = _version(rng, installed)
        packages.append(InstalledPackage(f"{source}-bin{n % 3}", version, "amd64", source, version, installed, ""))
    records = []
    for n in range(ADVISORIES):
        _, ecosystem, _ = rng.choices(ECOSYSTEMS, weights)[0]
        events: list[dict[str, str]] = [{"introduced": "0"}]
        if rng.random() < 0.8:
            events.append({"fixed": _version(rng, ecosystem)})
        records.append({
            "id": f"BENCH-{n}", "modified": "2026-11-01T00:00:00Z", "published": "2026-10-01T00:00:00Z",
            "aliases": [f"CVE-2026-{n}"],
            "affected": [{"package": {"ecosystem": ecosystem, "name": f"src{rng.randrange(names_per_ecosystem * 2)}"},
                          "ranges": [{"type": "ECOSYSTEM", "events": events}],
                          "ecosystem_specific": {"urgency": rng.choice(["low", "medium", "high", "unimportant"])}}],
        })
    return packages, records


def _clear_key_caches() -> None:
    from kiln.services.scanning.versions import _dpkg_string_key, apk_key, dpkg_key, rpm_key

    for cache in (dpkg_key, rpm_key, apk_key, _dpkg_string_key):
        cache.cache_clear()


def _indexed(packages: list[Any], records: list[dict[str, Any]]) -> tuple[float, float, float, Any]:
    """(index build seconds, cold match seconds, CPU seconds of both, outcome): key caches emptied first,
    so every version is parsed as in a fresh process."""
    from kiln.services.scanning.index import AdvisoryIndex
    from kiln.services.scanning.matching import scan

    _clear_key_caches()
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    index = AdvisoryIndex.from_records(("bench", record) for record in records)
    built = time.perf_counter()
    outcome = scan(packages, db=index)
    return built - started, time.perf_counter() - built, time.process_time() - cpu, outcome


def _naive(packages: list[Any], records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """One pass over every record per package: the same evaluation, no index."""
    from kiln.services.scanning.index import AdvisoryIndex, ecosystem_key
    from kiln.services.scanning.matching import scan

    found = []
    for package in packages:
        wanted = (ecosystem_key(package.ecosystem), package.source_name)
        relevant = [record for record in records for entry in record["affected"]
                    if (ecosystem_key(entry["package"]["ecosystem"]), entry["package"]["name"]) == wanted]
        outcome = scan([package], db=AdvisoryIndex.from_records(("bench", record) for record in relevant))
        found += [(f.vulnerability_id, f.package.name) for f in outcome.findings]
    return found


def _memory(packages: list[Any], records: list[dict[str, Any]]) -> float:
    tracemalloc.start()
    _indexed(packages, records)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / (1 << 20)


def _database_path(records: list[dict[str, Any]], packages: list[Any], findings: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kiln-bench-vulnmatch-") as work:
        os.environ["KILN_HOME"] = str(Path(work) / "home")
        from kiln.db.engine import reset_engines

        reset_engines()
        from kiln.services.scanning.advisories import import_advisories
        from kiln.services.scanning.index import _CACHE as index_cache
        from kiln.services.scanning.index import AdvisoryIndex
        from kiln.services.scanning.matching import scan

        archive = Path(work) / "all.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            for record in records:
                out.writestr(f"{record['id']}.json", json.dumps(record))
        started, cpu = time.perf_counter(), time.process_time()
        import_advisories(str(archive), source="bench")
        imported, imported_cpu = time.perf_counter(), time.process_time()
        again = import_advisories(str(archive), source="bench")  # unchanged records are not checked again
        reimported = time.perf_counter()
        ecosystems = {package.ecosystem for package in packages}
        _clear_key_caches()
        index_cache.clear()  # as a fresh process: the index is read from the database
        load_started, load_cpu = time.perf_counter(), time.process_time()
        index = AdvisoryIndex.load(ecosystems)
        loaded, loaded_cpu = time.perf_counter(), time.process_time()
        cold = scan(packages, db=index)
        scanned = time.perf_counter()
        cached = AdvisoryIndex.load(ecosystems)  # the same data: the process's index, one small read
        cached_loaded = time.perf_counter()
        warm = scan(packages, db=cached)
        warm_scanned = time.perf_counter()
        assert cached is index and len(cold.findings) == len(warm.findings) == findings
        reset_engines()
        return {"import_seconds": round(imported - started, 3),
                "import_cpu_seconds": round(imported_cpu - cpu, 3),
                "reimport_unchanged_seconds": round(reimported - imported, 3), "reimport_checked": again.checked,
                "load_index_seconds": round(loaded - load_started, 3),
                "load_index_cpu_seconds": round(loaded_cpu - load_cpu, 3),
                "scan_after_load_seconds": round(scanned - loaded, 3),
                "load_index_cached_seconds": round(cached_loaded - scanned, 4),
                "scan_cached_index_seconds": round(warm_scanned - cached_loaded, 3),
                "zip_bytes": archive.stat().st_size}


def run() -> dict[str, object]:
    packages, records = _data()
    rounds = [_indexed(packages, records) for _ in range(3)]
    build, cold, cpu, outcome = min(rounds, key=lambda result: result[0] + result[1])
    sample = packages[:NAIVE_SAMPLE]
    naive_started = time.perf_counter()
    naive_found = _naive(sample, records)
    naive_sample_seconds = time.perf_counter() - naive_started
    indexed_sample = [(f.vulnerability_id, f.package.name) for f in outcome.findings if f.package in set(sample)]
    assert sorted(naive_found) == sorted(indexed_sample), "the naive and indexed matchers disagree"
    naive_full = naive_sample_seconds * len(packages) / len(sample)
    indexed_total = build + cold
    return {
        "packages": len(packages), "advisories": len(records), "findings": len(outcome.findings),
        "unknown_packages": len(outcome.unknown),
        "index_build_seconds": round(build, 3),
        "match_seconds": round(cold, 3),
        "indexed_total_seconds_best_of_3": round(indexed_total, 3),
        "indexed_total_cpu_seconds": round(cpu, 3),
        "goal_seconds": GOAL_SECONDS, "indexed_vs_goal": round(indexed_total / GOAL_SECONDS, 3),
        "naive_sample_packages": len(sample), "naive_sample_seconds": round(naive_sample_seconds, 3),
        "naive_full_seconds_extrapolated": round(naive_full, 1),
        "naive_over_indexed": round(naive_full / indexed_total, 1),
        "load_average_1m": round(os.getloadavg()[0], 1),  # other work on the machine inflates wall times
        "indexed_peak_memory_mib": round(_memory(packages, records), 1),
        **_database_path(records, packages, len(outcome.findings)),
    }
