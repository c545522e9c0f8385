"""Reads take no write lock: the API's Describe/Get/List calls (and the key and region lookups every
request makes) run in read-only units of work, beside a writer that holds SQLite's write lock; a write
attempted in one is refused by the database before anything is written, and the work runs again as a
writer. Reads answered from memory (the caller's organization, allowed images settings) follow every
commit at once, and a DescribeImages page gives EC2's shape to its own images only."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.api.conftest import Server

from kiln.home import DEFAULT_ACCOUNT


@contextmanager
def write_lock_held(home: Path) -> Iterator[None]:
    """Another connection holds the database's write lock (``BEGIN IMMEDIATE``) for the block."""
    from kiln.db.engine import get_engine

    get_engine()  # the database exists and is migrated
    writer = sqlite3.connect(home / "kiln.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_read_only_unit_of_work_runs_beside_a_writer(kiln_home: Path) -> None:
    from sqlalchemy import text

    from kiln.db.engine import read_only, session

    with write_lock_held(kiln_home), read_only(), session() as db:  # an ordinary one would wait for the lock
        assert db.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_a_write_in_a_read_only_unit_of_work_is_refused_and_nothing_is_written(kiln_home: Path) -> None:
    from kiln.db.engine import ReadOnlyViolation, read_only
    from kiln.services.accounts.regions import create_region, list_regions

    with pytest.raises(ReadOnlyViolation), read_only():
        create_region("eu-west-1")
    assert "eu-west-1" not in [region["RegionName"] for region in list_regions()]


def test_work_that_writes_runs_again_as_a_writer(kiln_home: Path) -> None:
    from kiln.services.accounts.regions import create_region, list_regions
    from kiln.services.common.unit import only_reading

    made = only_reading(lambda: create_region("eu-west-1"))
    assert made["RegionName"] == "eu-west-1"
    assert "eu-west-1" in [region["RegionName"] for region in list_regions()]


@pytest.fixture
def ami(kiln_home: Path, busybox_dir: Path) -> str:
    from kiln.store import api

    return api.import_rootfs(busybox_dir, name="busybox-base")


def test_api_reads_are_answered_while_a_writer_holds_the_lock(server: Server, kiln_home: Path, ami: str) -> None:
    from kiln.services.builds import records

    image = records.create_image(name="web", version="1.0.0",
                                 recipe_arn=f"arn:aws:imagebuilder:local:{DEFAULT_ACCOUNT}:image-recipe/web/1.0.0",
                                 infrastructure_arn=f"arn:aws:imagebuilder:local:{DEFAULT_ACCOUNT}:"
                                                    "infrastructure-configuration/b")
    ec2, builder = server.client("ec2"), server.client()
    with write_lock_held(kiln_home):  # as a build or another process writing would
        assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"], MaxResults=5)["Images"]] == [ami]
        assert builder.get_image(imageBuildVersionArn=image)["image"]["arn"] == image
        assert builder.list_image_recipes()["imageRecipeSummaryList"] == []
        assert server.client("sts", region="us-east-1").get_caller_identity()["Account"] == DEFAULT_ACCOUNT
    ec2.create_tags(Resources=[ami], Tags=[{"Key": "after", "Value": "lock"}])  # a write, once the lock is free
    [tagged] = ec2.describe_images(ImageIds=[ami])["Images"]
    assert tagged["Tags"] == [{"Key": "after", "Value": "lock"}]


def test_sharing_and_allowed_images_changes_show_on_the_next_call(server: Server, ami: str) -> None:
    from kiln.services.accounts import organizations
    from kiln.services.accounts.accounts import create_access_key, create_account

    peer = create_account("peer")["Id"]
    theirs, mine = server.client("ec2", key=create_access_key(peer)), server.client("ec2")
    organization = organizations.create_organization(DEFAULT_ACCOUNT)["Organization"]
    root = organizations.list_roots(DEFAULT_ACCOUNT)["Roots"][0]["Id"]
    unit = organizations.create_organizational_unit(DEFAULT_ACCOUNT, root, "web")["OrganizationalUnit"]
    mine.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"OrganizationalUnitArn": unit["Arn"]}]})
    assert theirs.describe_images(ExecutableUsers=["self"])["Images"] == []
    assert theirs.describe_images(ExecutableUsers=["self"])["Images"] == []  # asked again: kept, still none

    organizations.add_account(DEFAULT_ACCOUNT, peer)
    organizations.move_account(DEFAULT_ACCOUNT, peer, unit["Id"])
    assert [i["ImageId"] for i in theirs.describe_images(ExecutableUsers=["self"])["Images"]] == [ami]
    organizations.move_account(DEFAULT_ACCOUNT, peer, root)
    assert theirs.describe_images(ExecutableUsers=["self"])["Images"] == []
    assert organization["Arn"].startswith("arn:aws:organizations::")

    assert "ImageAllowed" not in mine.describe_images(ImageIds=[ami])["Images"][0]
    mine.enable_allowed_images_settings(AllowedImagesSettingsState="audit-mode")
    assert mine.describe_images(ImageIds=[ami])["Images"][0]["ImageAllowed"] is True


def test_a_page_gives_its_own_items_their_shape_and_no_others() -> None:
    from kiln.api import ec2, paging

    shaped: list[int] = []

    def shape(number: int) -> dict[str, Any]:
        shaped.append(number)
        return {"ImageId": f"ami-{number:017x}"}

    whole = {"Images": paging.Shaped(list(range(30)), shape)}
    first = paging.page("ec2", "DescribeImages", {"MaxResults": 10}, lambda: whole, ec2.DIALECT, ec2.SERVICE.limits)
    assert [image["ImageId"] for image in first["Images"]] == [f"ami-{n:017x}" for n in range(10)]
    assert shaped == list(range(10))
    second = paging.page("ec2", "DescribeImages", {"MaxResults": 10, "NextToken": first["NextToken"]},
                         lambda: pytest.fail("the next page is cut from the first page's list"), ec2.DIALECT,
                         ec2.SERVICE.limits)
    assert [image["ImageId"] for image in second["Images"]] == [f"ami-{n:017x}" for n in range(10, 20)]
    assert shaped == list(range(20))


def test_start_up_steps_write_even_when_the_first_to_open_the_database_only_reads(kiln_home: Path) -> None:
    from kiln.db import open_hooks
    from kiln.db.engine import read_only, reset_engines
    from kiln.services.accounts.regions import create_region, list_regions

    reset_engines()
    made: list[str] = []

    def hook() -> None:
        made.append(create_region("ap-east-9")["RegionName"])

    open_hooks.on_first_open(hook)
    try:
        with read_only():
            listed = [region["RegionName"] for region in list_regions()]
    finally:
        open_hooks._hooks.remove(hook)
    assert made == ["ap-east-9"] and "ap-east-9" in listed


def test_cli_reads_answer_while_a_writer_holds_the_lock(kiln: Any, kiln_home: Path, ami: str) -> None:
    with write_lock_held(kiln_home):
        listed = kiln("image", "list", "--output", "json")
        assert listed.exit_code == 0, listed.stderr
        assert ami in listed.stdout
        regions = kiln("region", "list", "--output", "json")
        assert regions.exit_code == 0 and "local" in regions.stdout, regions.stderr


def test_which_command_lines_only_read() -> None:
    from kiln.cli.reads import only_reads

    assert only_reads(["image", "list", "--output", "json"]) and only_reads(["image", "allowed", "get"])
    assert only_reads(["launch-template", "describe-versions", "lt-0123"]) and only_reads(["org", "list-ous"])
    assert not only_reads(["image", "deregister", "ami-0123"]) and not only_reads(["account", "keys", "create"])
    assert not only_reads(["image", "allowed", "enable"]) and not only_reads(["serve"]) and not only_reads([])
