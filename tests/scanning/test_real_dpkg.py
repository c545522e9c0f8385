"""A real dpkg database (this machine's ``/var/lib/dpkg/status``, read here by the test itself: the
inventory reader is not this package's job) against advisories written around its installed versions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.scanning.conftest import affected, fixed, osv

from kiln.model.packages import InstalledPackage
from kiln.services.scanning.index import AdvisoryIndex
from kiln.services.scanning.matching import scan

STATUS = Path("/var/lib/dpkg/status")
OS_RELEASE = Path("/etc/os-release")


def _installed() -> list[InstalledPackage]:
    from debian.deb822 import Deb822

    release = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', OS_RELEASE.read_text(), re.MULTILINE))
    if release.get("ID") != "debian" or not release.get("VERSION_ID"):
        pytest.skip("not a Debian release with a VERSION_ID")
    packages = []
    with STATUS.open() as status:
        for paragraph in Deb822.iter_paragraphs(status):
            if "installed" not in paragraph.get("Status", "").split():
                continue
            source, _, source_version = paragraph.get("Source", paragraph["Package"]).partition(" ")
            packages.append(InstalledPackage(
                name=paragraph["Package"], version=paragraph["Version"], architecture=paragraph["Architecture"],
                source_name=source, source_version=source_version.strip("()") or paragraph["Version"],
                ecosystem=f"Debian:{release['VERSION_ID']}", purl=""))
    return packages


@pytest.mark.skipif(not STATUS.is_file(), reason="no dpkg database on this machine")
def test_the_real_dpkg_database_against_advisories_with_known_answers() -> None:
    packages = _installed()
    ecosystem = packages[0].ecosystem
    binaries = [p for p in packages if p.source_name != p.name]  # found by source package only
    target = binaries[0] if binaries else packages[0]
    patched = next(p for p in packages if p.source_name != target.source_name)
    db = AdvisoryIndex.from_records(("test", record) for record in [
        osv("DSA-9000-1", affected(ecosystem, target.source_name, *fixed(target.source_version + "+kiln1"))),
        osv("DSA-9001-1", affected(ecosystem, patched.source_name, *fixed(patched.source_version))),
    ])
    outcome = scan(packages, db=db)
    assert outcome.unknown == [] and outcome.scanned == len(packages) > 50
    same_source = sorted(p.name for p in packages if p.source_name == target.source_name
                         and p.source_version == target.source_version)
    assert sorted(f.package.name for f in outcome.findings) == same_source
    assert {(f.vulnerability_id, f.fixed_version) for f in outcome.findings} == {
        ("DSA-9000-1", target.source_version + "+kiln1")}
