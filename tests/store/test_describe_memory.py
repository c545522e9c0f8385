"""DescribeImages answers from memory only while nothing changed the store: every commit, from this
process or another, and this thread's own uncommitted writes show in the next answer."""

from __future__ import annotations

import os
import subprocess
import sys

from kiln.db.engine import session
from kiln.db.tables.store import StoreTag
from kiln.store import api


def _tags(ami: str) -> dict[str, str]:
    [info] = api.describe_images(image_ids=[ami])
    return info.tags


def test_a_commit_in_this_process_shows(base_ami: str) -> None:
    assert _tags(base_ami) == {}
    api.create_tags(base_ami, {"role": "web"})
    assert _tags(base_ami) == {"role": "web"}
    api.deregister_image(base_ami)
    assert api.describe_images() == []


def test_a_commit_from_another_process_shows(base_ami: str) -> None:
    assert _tags(base_ami) == {}
    script = f"from kiln.store import api; api.create_tags({base_ami!r}, {{'team': 'a'}})"
    subprocess.run([sys.executable, "-c", script], check=True, env=dict(os.environ))
    assert _tags(base_ami) == {"team": "a"}


def test_uncommitted_writes_of_this_unit_of_work_show(base_ami: str) -> None:
    assert _tags(base_ami) == {}
    with session() as db:
        db.add(StoreTag(resource_id=base_ami, key="stage", value="draft"))
        db.flush()
        assert _tags(base_ami) == {"stage": "draft"}
    assert _tags(base_ami) == {"stage": "draft"}


def test_a_shape_changed_by_its_caller_does_not_change_the_next(base_ami: str) -> None:
    [info] = api.describe_images()
    shape = info.to_ec2()
    shape["Name"] = "changed"
    assert info.to_ec2()["Name"] == "busybox-base"
    assert api.describe_images()[0].to_ec2()["Name"] == "busybox-base"


def test_calls_after_a_commit_share_one_read(base_ami: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Calls that find the memory out of date while a read is under way wait for it instead of each
    reading every image again; all answer the same images."""
    import threading

    from kiln.store import images

    api.create_tags(base_ami, {"role": "web"})  # memory out of date
    entered, release = threading.Event(), threading.Event()
    reads: list[int] = []
    read_region = images._read_region

    def blocking_read(db, region):  # type: ignore[no-untyped-def]
        reads.append(1)
        entered.set()
        release.wait(60)
        return read_region(db, region)

    monkeypatch.setattr(images, "_read_region", blocking_read)
    answers: list[list[str]] = []

    def call() -> None:
        answers.append([info.id for info in api.describe_images()])

    first = threading.Thread(target=call)
    first.start()
    assert entered.wait(60)
    others = [threading.Thread(target=call) for _ in range(4)]
    for thread in others:
        thread.start()
    for thread in others:
        thread.join(0.5)
        assert thread.is_alive()  # waiting for the read under way, not reading
    assert len(reads) == 1
    release.set()
    for thread in [first, *others]:
        thread.join(60)
    assert len(reads) == 1 and answers == [[base_ami]] * 5
