"""Matching installed packages against OSV records with known answers: Debian backports, source-package
keys, unfixed and won't-fix states, RPM epochs, apk revisions, severities, unknown ecosystems."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.scanning.conftest import affected, fixed, osv, package

from kiln.services.scanning.index import AdvisoryIndex
from kiln.services.scanning.matching import FIX_DEFERRED, FIXED, NO_FIX_YET, WILL_NOT_FIX, findings_for, scan
from kiln.services.scanning.summary import summarize

CVSS_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
CVSS_MEDIUM = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"  # 6.1


def index(*records: dict) -> AdvisoryIndex:
    return AdvisoryIndex.from_records(("test", record) for record in records)


def test_a_debian_backport_is_judged_by_dpkg_order() -> None:
    db = index(osv("DSA-5000-1", affected("Debian:12", "openssl", *fixed("1.2.3-1+deb12u1")),
                   aliases=["CVE-2026-0001"]))
    hits = findings_for([package("libssl3", "1.2.3-1", source="openssl")], db=db)
    assert [(f.vulnerability_id, f.aliases, f.fixed_version, f.fix_state) for f in hits] == [
        ("DSA-5000-1", ("CVE-2026-0001",), "1.2.3-1+deb12u1", FIXED)]
    assert hits[0].package.name == "libssl3"
    patched = [package("libssl3", "1.2.3-1+deb12u1", source="openssl"),
               package("openssl", "1.2.3-1+deb12u2")]
    assert findings_for(patched, db=db) == []


def test_upstream_1_10_is_newer_than_1_9() -> None:
    db = index(osv("DSA-5001-1", affected("Debian:12", "zlib", *fixed("1.10-1"))),
               osv("DSA-5002-1", affected("Debian:12", "bzip2", *fixed("1.9-1"))))
    hits = findings_for([package("zlib1g", "1.9-3", source="zlib"), package("bzip2", "1.10-1")], db=db)
    assert [(f.vulnerability_id, f.installed_version) for f in hits] == [("DSA-5001-1", "1.9-3")]


def test_debian_records_are_keyed_by_source_package_and_version() -> None:
    db = index(osv("DSA-5003-1", affected("Debian:12", "libssl3", *fixed("9.0-1"))),  # a binary name: no match
               osv("DSA-5004-1", affected("Debian:12", "glibc", *fixed("2.36-9+deb12u3"))))
    # a binNMU's binary version (+b1) is not a fix: the source version is compared
    hits = findings_for([package("libssl3", "1.0-1", source="openssl"),
                         package("libc6", "2.36-9+deb12u3+b1", source="glibc", source_version="2.36-9")], db=db)
    assert [(f.vulnerability_id, f.package.name, f.installed_version) for f in hits] == [
        ("DSA-5004-1", "libc6", "2.36-9")]


def test_unfixed_and_wont_fix_are_reported_never_fixed() -> None:
    db = index(
        osv("DEBIAN-CVE-2026-1000", affected("Debian:12", "curl", {"introduced": "0"},
                                             ecosystem_specific={"urgency": "low"}), upstream=["CVE-2026-1000"]),
        osv("DEBIAN-CVE-2026-1001", affected("Debian:12", "curl", {"introduced": "0"},
                                             ecosystem_specific={"urgency": "unimportant"})),
        osv("UBUNTU-CVE-2026-1002", affected("Ubuntu:22.04:LTS", "curl", {"introduced": "0"},
                                             ecosystem_specific={"status": "deferred"})),
    )
    hits = scan([package("curl", "7.88.1-10+deb12u5"), package("curl", "7.81.0-1ubuntu1.15", "Ubuntu:22.04")],
                db=db).findings
    states = {f.vulnerability_id: (f.fixed_version, f.fix_state, f.fix_available, f.severity.label) for f in hits}
    assert states == {
        "DEBIAN-CVE-2026-1000": (None, NO_FIX_YET, False, "LOW"),
        "DEBIAN-CVE-2026-1001": (None, WILL_NOT_FIX, False, "INFORMATIONAL"),
        "UBUNTU-CVE-2026-1002": (None, FIX_DEFERRED, False, "UNTRIAGED"),
    }
    assert next(f for f in hits if f.vulnerability_id == "DEBIAN-CVE-2026-1000").aliases == ("CVE-2026-1000",)
    summary = summarize(scan([package("curl", "7.88.1-10+deb12u5")], db=db), now=datetime(2026, 12, 1, tzinfo=UTC))
    assert summary.highest_severity == "LOW"
    assert summary.highest_fixable_severity is None and summary.oldest_days_since_fix_available is None


def test_rpm_epoch_decides() -> None:
    db = index(osv("RLSA-2026:1", affected("Rocky Linux:9", "openssh", *fixed("1:8.7p1-30.el9"))))
    hits = findings_for([package("openssh", "9.9p1-1.el9", "Rocky Linux:9")], db=db)  # epoch 0 < epoch 1
    assert [(f.vulnerability_id, f.fixed_version) for f in hits] == [("RLSA-2026:1", "1:8.7p1-30.el9")]
    assert findings_for([package("openssh", "1:8.7p1-30.el9", "Rocky Linux:9")], db=db) == []


def test_apk_revision_decides() -> None:
    db = index(osv("ALPINE-CVE-2026-2", affected("Alpine:v3.19", "busybox", *fixed("1.36.1-r10"))))
    assert [f.installed_version for f in findings_for([package("busybox", "1.36.1-r9", "Alpine:v3.19")], db=db)] == [
        "1.36.1-r9"]
    assert findings_for([package("busybox", "1.36.1-r10", "Alpine:v3.19")], db=db) == []


def test_ubuntu_priority_wins_over_cvss() -> None:
    record = osv("UBUNTU-CVE-2026-3", affected("Ubuntu:22.04:LTS", "openssh", *fixed("1:8.9p1-3ubuntu0.10")),
                 severity=[{"type": "CVSS_V3", "score": CVSS_CRITICAL}, {"type": "Ubuntu", "score": "high"}])
    hits = findings_for([package("openssh-server", "1:8.9p1-3ubuntu0.6", "Ubuntu:22.04", source="openssh")],
                        db=index(record))
    assert [(f.severity.label, f.severity.source) for f in hits] == [("HIGH", "Ubuntu priority")]


def test_cvss_v3_is_the_fallback_then_untriaged() -> None:
    db = index(
        osv("DEBIAN-CVE-2026-4", affected("Debian:12", "vim", *fixed("2:9.0.1378-2+deb12u1"),
                                          ecosystem_specific={"urgency": "not yet assigned"}),
            severity=[{"type": "CVSS_V3", "score": CVSS_MEDIUM}]),
        osv("DEBIAN-CVE-2026-5", affected("Debian:12", "vim", *fixed("2:9.0.1378-2+deb12u1"))),
    )
    hits = {f.vulnerability_id: f.severity for f in findings_for([package("vim", "2:9.0.1378-2")], db=db)}
    assert (hits["DEBIAN-CVE-2026-4"].label, hits["DEBIAN-CVE-2026-4"].score) == ("MEDIUM", 6.1)
    assert (hits["DEBIAN-CVE-2026-5"].label, hits["DEBIAN-CVE-2026-5"].source) == ("UNTRIAGED", "none")


def test_versions_lists_last_affected_limits_and_withdrawn() -> None:
    db = index(
        osv("OSV-1", affected("Debian:12", "a", versions=["1.0-1", "1.0-2"])),
        osv("OSV-2", {"package": {"ecosystem": "Debian:12", "name": "b"},
                      "ranges": [{"type": "ECOSYSTEM",
                                  "events": [{"introduced": "1.0"}, {"last_affected": "1.5-1"}]}]}),
        osv("OSV-3", affected("Debian:12", "c", *fixed("9.0")), withdrawn="2026-11-02T00:00:00Z"),
    )
    hits = findings_for([package("a", "1.0-2"), package("b", "1.5-1"), package("b", "1.5-2"),
                         package("b", "0.9-1"), package("c", "1.0")], db=db)
    assert sorted((f.vulnerability_id, f.installed_version, f.fix_state) for f in hits) == [
        ("OSV-1", "1.0-2", NO_FIX_YET), ("OSV-2", "1.5-1", NO_FIX_YET)]


def test_missing_data_is_unknown_not_clean() -> None:
    db = index(osv("DSA-1-1", affected("Debian:12", "x", *fixed("2.0"))))
    outcome = scan([package("x", "3.0"), package("y", "1.0", "Debian:11"), package("z", "1.0", ""),
                    package("left-pad", "1.0.0", "npm")], db=db)
    assert outcome.findings == []
    assert [p.name for p in outcome.unknown] == ["y", "z", "left-pad"]
    summary = summarize(outcome, now=datetime(2026, 12, 1, tzinfo=UTC))
    assert (summary.complete, summary.unknown_ecosystems) == (False, ["(unknown ecosystem)", "Debian:11", "npm"])


def test_summary_counts_highest_and_fix_ages() -> None:
    db = index(
        osv("DSA-1-1", affected("Debian:12", "a", *fixed("2.0"), ecosystem_specific={"urgency": "high"}),
            published="2026-11-01T00:00:00Z"),
        osv("DSA-2-1", affected("Debian:12", "b", *fixed("2.0"), ecosystem_specific={"urgency": "medium"}),
            published="2026-10-01T00:00:00Z"),
        osv("DEBIAN-CVE-2026-9", affected("Debian:12", "c", {"introduced": "0"}),
            severity=[{"type": "CVSS_V3", "score": CVSS_CRITICAL}]),
    )
    outcome = scan([package("a", "1.0"), package("b", "1.0"), package("c", "1.0")], db=db)
    summary = summarize(outcome, now=datetime(2026, 12, 1, tzinfo=UTC))
    assert {k: v for k, v in summary.counts.items() if v} == {"CRITICAL": 1, "HIGH": 1, "MEDIUM": 1}
    assert (summary.highest_severity, summary.highest_fixable_severity) == ("CRITICAL", "HIGH")
    assert summary.oldest_days_since_fix_available == 61  # DSA-2-1, published 2026-10-01
    assert summary.fix_available_since["HIGH"] == datetime(2026, 11, 1, tzinfo=UTC)
    assert summary.fix_available_since["CRITICAL"] is None and summary.complete


def test_events_are_walked_in_version_order_whatever_their_order_in_the_record() -> None:
    events = [{"fixed": "2.3-1"}, {"introduced": "2.0-1"}, {"fixed": "1.5-1"}, {"introduced": "1.0-1"}]
    limited = [{"introduced": "0"}, {"fixed": "3.0-1"}, {"limit": "2.5-1"}]
    db = index(osv("OSV-9", affected("Debian:12", "p", *events)), osv("OSV-10", affected("Debian:12", "q", *limited)))
    answers = {version: [(f.vulnerability_id, f.fixed_version) for f in findings_for([package("p", version)], db=db)]
               for version in ("0.9-1", "1.0-1", "1.7-1", "2.1-1", "2.3-1")}
    assert answers == {"0.9-1": [], "1.0-1": [("OSV-9", "1.5-1")], "1.7-1": [], "2.1-1": [("OSV-9", "2.3-1")],
                       "2.3-1": []}
    assert [f.fixed_version for f in findings_for([package("q", "2.0-1")], db=db)] == ["3.0-1"]
    assert findings_for([package("q", "2.7-1")], db=db) == []  # at or past the limit


def test_an_installed_version_that_does_not_parse_is_unknown() -> None:
    db = index(osv("DSA-1-1", affected("Debian:12", "x", *fixed("2.0"))))
    outcome = scan([package("x", "1.0_bad"), package("x", "1.0")], db=db)
    assert [p.version for p in outcome.unknown] == ["1.0_bad"]
    assert [f.installed_version for f in outcome.findings] == ["1.0"]


def test_ec2_scan_results_follow_the_ec2_shape() -> None:
    from kiln.services.scanning.summary import ec2_scan_results

    db = index(
        osv("DSA-1-1", affected("Debian:12", "a", *fixed("2.0"), ecosystem_specific={"urgency": "medium"}),
            published="2026-10-01T00:00:00Z"),
        osv("OSV-2", affected("Debian:12", "b", {"introduced": "0"})),  # UNTRIAGED: no EC2 label
    )
    now = datetime(2026, 12, 1, tzinfo=UTC)
    results = ec2_scan_results(summarize(scan([package("a", "1.0"), package("b", "1.0")], db=db), now=now),
                               scanned_at=now)
    assert results == {"FindingScanDate": now, "HighestFindingSeverityLabel": "medium",
                       "MediumFixAvailableSince": datetime(2026, 10, 1, tzinfo=UTC)}
    import botocore.session

    shape = botocore.session.get_session().get_service_model("ec2").shape_for("ScanResults")
    assert set(results) <= set(shape.members)
    assert results["HighestFindingSeverityLabel"] in shape.members["HighestFindingSeverityLabel"].enum
