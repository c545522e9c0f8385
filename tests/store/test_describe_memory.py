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
