"""The compiled matcher (sorted fixed versions, bisection) gives exactly the answer of the plain walk —
every package, every lookup, every entry evaluated one by one — over a generated corpus of every range
shape OSV allows, all four version orders' ecosystems, family-wide records, states and bad versions."""

from __future__ import annotations

import random
from typing import Any

from kiln.errors import InvalidInput
from kiln.model.packages import InstalledPackage
from kiln.services.scanning.index import AdvisoryIndex
from kiln.services.scanning.matching import FIXED, _affects, _lookups, _state, _when, scan
from kiln.services.scanning.severity import severity_of
from kiln.services.scanning.versions import order_of, version_key

ECOSYSTEMS = [  # (inventory ecosystem, advisory ecosystems)
    ("Debian:12", ["Debian:12", "Debian"]), ("Ubuntu:22.04", ["Ubuntu:22.04:LTS", "Ubuntu:Pro:22.04:LTS"]),
    ("Alpine:v3.19", ["Alpine:v3.19", "Alpine:3.19"]), ("Rocky Linux:9", ["Rocky Linux:9"]),
]
NAMES = [f"pkg{n}" for n in range(40)]


def _version(rng: random.Random, ecosystem: str) -> str:
    upstream = f"{rng.randint(0, 3)}.{rng.randint(0, 4)}"
    if rng.random() < 0.1:
        upstream += rng.choice(["~rc1", "a", ".1", "+dfsg"])
    if ecosystem.startswith(("Debian", "Ubuntu")):
        epoch = "1:" if rng.random() < 0.05 else ""
        return f"{epoch}{upstream}-{rng.randint(1, 3)}" + rng.choice(["", "+deb12u1", "+b1", "ubuntu0.1"])
    if ecosystem.startswith("Alpine"):
        return f"{upstream}-r{rng.randint(0, 4)}"
    return f"{upstream}-{rng.randint(1, 4)}.el9"


def _events(rng: random.Random, ecosystem: str) -> list[dict[str, str]]:
    versions = sorted({_version(rng, ecosystem) for _ in range(4)})
    shape = rng.randrange(9)
    if shape == 0:
        return [{"introduced": "0"}]
    if shape == 1:
        return [{"introduced": versions[0]}, {"fixed": versions[-1]}]
    if shape == 2:
        return [{"introduced": "0"}, {"last_affected": versions[0]}]
    if shape == 3:
        return [{"introduced": "0"}, {"fixed": versions[0]}, {"introduced": versions[-1]}]
    if shape == 4:
        return [{"introduced": "0"}, {"fixed": versions[0]}, {"limit": rng.choice(["*", versions[-1]])}]
    if shape == 5:
        return [{"fixed": versions[-1]}, {"introduced": "0"}]  # unsorted events
    return [{"introduced": "0"}, {"fixed": versions[0]}]


def _affected(rng: random.Random, ecosystem: str, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name},
                             "ranges": [{"type": "ECOSYSTEM", "events": _events(rng, ecosystem)}]}
    roll = rng.random()
    if roll < 0.05:
        entry["ranges"].append({"type": "ECOSYSTEM", "events": _events(rng, ecosystem)})
    elif roll < 0.1:
        entry["ranges"].append({"type": "GIT", "repo": "https://example.org/x", "events": [{"introduced": "0"}]})
    elif roll < 0.15:
        entry["versions"] = [_version(rng, ecosystem) for _ in range(3)]
    elif roll < 0.18:
        del entry["ranges"]
        entry["versions"] = [_version(rng, ecosystem)]
    state = rng.choice([None, "will_not_fix", "deferred", "postponed", "unimportant"])
    if state == "unimportant":
        entry["ecosystem_specific"] = {"urgency": state}
    elif state:
        entry["database_specific"] = {"status": state}
    return entry


def _corpus(seed: int) -> tuple[list[InstalledPackage], list[dict[str, Any]]]:
    rng = random.Random(seed)
    records = []
    for n in range(1500):
        _, ecosystems = rng.choice(ECOSYSTEMS)
        ecosystem, name = rng.choice(ecosystems), rng.choice(NAMES)
        entries = [_affected(rng, ecosystem, name) for _ in range(2 if rng.random() < 0.05 else 1)]
        if rng.random() < 0.05:  # the same record for another package
            entries.append(_affected(rng, ecosystem, rng.choice(NAMES)))
        record = {"id": f"GEN-{n % 1400}", "aliases": [f"CVE-2026-{n}"], "published": "2026-10-01T00:00:00Z",
                  "modified": "2026-11-01T00:00:00Z", "summary": f"record {n}", "affected": entries}
        if rng.random() < 0.02:
            record["withdrawn"] = "2026-11-02T00:00:00Z"
        records.append(record)
    # a malformed advisory version makes the packages that reach it unknown
    records.append({"id": "GEN-BAD", "affected": [{"package": {"ecosystem": "Debian:12", "name": "pkg7"},
                                                    "ranges": [{"type": "ECOSYSTEM", "events": [
                                                        {"introduced": "0"}, {"fixed": "not a version!"}]}]}]})
    packages = []
    for n in range(1200):
        ecosystem, _ = rng.choice(ECOSYSTEMS)
        name, version = rng.choice(NAMES), _version(rng, ecosystem)
        source, source_version = name, version
        if rng.random() < 0.3:
            source, source_version = rng.choice(NAMES), _version(rng, ecosystem)
        if n % 97 == 0:
            version = source_version = "bad version!"
        packages.append(InstalledPackage(name, version, "amd64", source, source_version,
                                         rng.choice([ecosystem, ecosystem, "Debian:11", "Fedora:40", ""]), ""))
    return packages, records


def _walked(packages: list[InstalledPackage], db: AdvisoryIndex) -> tuple[list[tuple[Any, ...]], list[str]]:
    """The plain walk: every entry of every lookup in turn, as the matcher did before it was compiled."""
    findings: list[tuple[Any, ...]] = []
    unknown: list[str] = []
    for package in packages:
        order = order_of(package.ecosystem) if package.ecosystem else None
        if order is None or not db.covers(package.ecosystem):
            unknown.append(package.name)
            continue
        found: dict[str, tuple[Any, ...]] = {}
        try:
            for name, version in _lookups(package, order):
                entries = db.entries(package.ecosystem, name)
                if not entries:
                    continue
                installed = version_key(order, version)
                for entry in entries:
                    record = entry.record
                    if record["id"] in found or entry.order != order:
                        continue
                    hit = _affects(entry, installed)
                    if hit is not None:
                        fixed = hit[0]
                        aliases = tuple(dict.fromkeys([*record.get("aliases", []), *record.get("upstream", [])]))
                        since = _when(record.get("published")) or _when(record.get("modified"))
                        found[record["id"]] = (
                            record["id"], aliases, package.name, version, fixed,
                            FIXED if fixed else _state(entry.affected),
                            severity_of(record, entry.affected).label, since if fixed else None,
                            entry.source, record.get("summary") or "")
        except InvalidInput:
            unknown.append(package.name)
            continue
        findings.extend(found.values())
    return findings, unknown


def _compiled(packages: list[InstalledPackage], db: AdvisoryIndex) -> tuple[list[tuple[Any, ...]], list[str]]:
    outcome = scan(packages, db=db)
    return ([(f.vulnerability_id, f.aliases, f.package.name, f.installed_version, f.fixed_version, f.fix_state,
              f.severity.label, f.fix_available_since, f.source, f.summary) for f in outcome.findings],
            [package.name for package in outcome.unknown])


def test_the_compiled_matcher_gives_the_plain_walks_answer() -> None:
    for seed in (1, 2, 3):
        packages, records = _corpus(seed)
        expected = _walked(packages, AdvisoryIndex.from_records(("gen", record) for record in records))
        db = AdvisoryIndex.from_records(("gen", record) for record in records)
        assert _compiled(packages, db) == expected
        assert _compiled(packages, db) == expected  # again, from the buckets compiled by the first scan
        findings, unknown = expected
        states = {finding[5] for finding in findings}
        assert len(findings) > 300 and {"FIX_AVAILABLE", "NO_FIX_YET", "WILL_NOT_FIX", "FIX_DEFERRED"} <= states
        assert len(unknown) > 50
