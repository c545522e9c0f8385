"""After a commit, DescribeImages reads again only the AMIs the commit changed (the change log SQLite
triggers keep, migration 0022_image_changes), and still shows every change: made in this process, by
another OS process, or by plain SQL on another connection; tags, deregistration, launch permissions, an
owner alias. Without the triggers everything is read again."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from kiln.db.base import utcnow
from kiln.model.sharing import Principal
from kiln.store import api, images

OTHER = "210987654321"


def _in_other_process(code: str) -> None:
    """``code`` run by a separate Python process on the same KILN_HOME (``api`` is kiln.store.api)."""
    subprocess.run([sys.executable, "-c", "from kiln.store import api\n" + code], check=True, env=dict(os.environ))


def _database(kiln_home: Path) -> sqlite3.Connection:
    return sqlite3.connect(kiln_home / "kiln.db", isolation_level=None, timeout=60)


@pytest.fixture
def three(base_ami: str) -> list[str]:
    return [base_ami, *(api.copy_image(base_ami, region="local", name=f"copy-{n}") for n in (1, 2))]


@pytest.fixture
def no_full_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every full read of a region from now on, by region."""
    reads: list[str] = []
    read_region = images._read_region

    def counted(db, region):  # type: ignore[no-untyped-def]
        reads.append(region)
        return read_region(db, region)

    monkeypatch.setattr(images, "_read_region", counted)
    return reads


def _by_id() -> dict[str, images.ImageInfo]:
    return {info.id: info for info in api.describe_images()}


def test_only_the_changed_image_is_read_again(three: list[str], no_full_read: list[str]) -> None:
    first, second, third = three
    before = _by_id()  # the first read of the region is whole
    assert no_full_read == ["local"]
    api.create_tags(second, {"role": "web"})
    after = _by_id()
    assert after[second].tags == {"role": "web"}
    assert after[first] is before[first] and after[third] is before[third]  # kept, not read again
    assert after[second] is not before[second]
    assert no_full_read == ["local"]
    assert [info.id for info in api.describe_images()] == [first, second, third]  # the same order


def test_a_commit_touching_no_image_of_the_region_keeps_the_answer(three: list[str], kiln_home: Path,
                                                                    no_full_read: list[str]) -> None:
    before = api.describe_images()
    with _database(kiln_home) as db:
        db.execute("INSERT INTO store_tags (resource_id, key, value) VALUES ('snap-0', 'k', 'v')")
    after = api.describe_images()
    assert [a is b for a, b in zip(after, before, strict=True)] == [True, True, True]
    assert no_full_read == ["local"]


def test_a_tag_added_by_plain_sql_on_another_connection_shows(three: list[str], kiln_home: Path,
                                                              no_full_read: list[str]) -> None:
    assert _by_id()[three[2]].tags == {}
    with _database(kiln_home) as db:
        db.execute("INSERT INTO store_tags (resource_id, key, value) VALUES (?, 'team', 'a')", (three[2],))
    assert _by_id()[three[2]].tags == {"team": "a"}
    with _database(kiln_home) as db:
        db.execute("DELETE FROM store_tags WHERE resource_id = ?", (three[2],))
    assert _by_id()[three[2]].tags == {}
    assert no_full_read == ["local"]


def test_an_image_deregistered_by_another_process_is_gone(three: list[str], no_full_read: list[str]) -> None:
    assert set(_by_id()) == set(three)
    _in_other_process(f"api.deregister_image({three[1]!r})")
    assert set(_by_id()) == {three[0], three[2]}
    [gone] = api.describe_images(image_ids=[three[1]], filters={"state": ["deregistered"]})
    assert gone.state == "deregistered"
    assert no_full_read == ["local"]


def test_a_launch_permission_changed_by_another_process_shows(three: list[str], no_full_read: list[str]) -> None:
    other = Principal(OTHER)
    assert api.describe_images(caller=other) == []
    _in_other_process(f"api.modify_launch_permission({three[0]!r}, add=[{{'UserId': {OTHER!r}}}])")
    assert [info.id for info in api.describe_images(caller=other)] == [three[0]]
    assert [info.id for info in api.describe_images(caller=other, executable_users=["self"])] == [three[0]]
    _in_other_process(f"api.modify_launch_permission({three[0]!r}, remove=[{{'UserId': {OTHER!r}}}])")
    assert api.describe_images(caller=other) == []
    assert api.describe_images(caller=other, executable_users=["self"]) == []
    assert no_full_read == ["local"]


def test_a_new_image_from_another_process_shows_in_order(three: list[str], no_full_read: list[str]) -> None:
    assert len(api.describe_images()) == 3
    _in_other_process(f"print(api.copy_image({three[0]!r}, region='local', name='copy-3'))")
    found = api.describe_images()
    assert [info.name for info in found] == ["busybox-base", "copy-1", "copy-2", "copy-3"]
    assert no_full_read == ["local"]


def test_an_owner_alias_changed_elsewhere_reads_every_image(three: list[str], kiln_home: Path,
                                                           no_full_read: list[str]) -> None:
    from kiln.home import DEFAULT_ACCOUNT

    assert {info.owner_alias for info in api.describe_images()} == {None}
    with _database(kiln_home) as db:
        changed = db.execute("UPDATE accounts SET image_owner_alias = 'amazon' WHERE id = ?", (DEFAULT_ACCOUNT,))
        assert changed.rowcount == 1
    assert {info.owner_alias for info in api.describe_images()} == {"amazon"}
    assert [info.id for info in api.describe_images(owners=["amazon"])] == three
    assert no_full_read == ["local", "local"]  # every AMI shows the alias: all read again


def test_without_the_triggers_every_change_still_shows(three: list[str], kiln_home: Path,
                                                       no_full_read: list[str]) -> None:
    assert _by_id()[three[1]].tags == {}
    with _database(kiln_home) as db:
        db.execute("DROP TRIGGER kiln_image_change_store_tags_insert")  # as a table rebuilt by a migration
    api.create_tags(three[1], {"role": "db"})
    assert _by_id()[three[1]].tags == {"role": "db"}
    assert no_full_read == ["local", "local"]


def test_a_kept_answer_ends_when_a_deprecation_time_comes(base_ami: str, kiln_home: Path) -> None:
    """Another account sees a public AMI until its deprecation time, then no more (unless it asks for
    deprecated ones): the same question asked again gets a new answer then, though nothing committed."""
    api.modify_launch_permission(base_ami, add=[{"Group": "all"}])
    soon = utcnow() + timedelta(seconds=2)
    with _database(kiln_home) as db:
        db.execute("UPDATE store_images SET deprecation_time = ? WHERE id = ?",
                   (soon.strftime("%Y-%m-%d %H:%M:%S.%f"), base_ami))
    other = Principal(OTHER)
    assert [info.id for info in api.describe_images(caller=other)] == [base_ami]
    assert api.describe_images(caller=other)[0].deprecation_time is not None
    while utcnow() <= soon:
        time.sleep(0.1)
    assert api.describe_images(caller=other) == []
    assert [info.id for info in api.describe_images(caller=other, include_deprecated=True)] == [base_ami]
