"""A ``kiln serve`` process answers repeated reads (DescribeImages, GetImage) from the bytes it encoded
them to (``kiln.api.encoded``): the next answer after a change another process commits shows it (a tag,
a launch permission granted and taken back, a new AMI, a deregistration, an image build finishing);
callers of different accounts asking the very same request never get each other's bytes; every answer
carries its own request id, the one in its ``x-amzn-requestid`` header; and the page tokens in kept pages
walk the list."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from tests.api.conftest import ServeProcess, raw

EC2_NS = "{http://ec2.amazonaws.com/doc/2016-11-15/}"
AMIS = 12
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


@pytest.fixture
def amis(kiln_home: Path, busybox_dir: Path) -> list[str]:
    """AMIS AMIs of the default account in creation order: rows on the snapshot of the last, imported (made
    before it, so an AMI made in the test comes after them all)."""
    from datetime import timedelta

    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.store import StoreImage
    from kiln.store import api

    imported = api.import_rootfs(busybox_dir, name="busybox-00")
    ids = []
    with session() as db:
        source = db.scalars(select(StoreImage).where(StoreImage.id == imported)).one()
        columns = {c.key: getattr(source, c.key) for c in StoreImage.__table__.columns}
        for number in range(1, AMIS):
            ids.append(f"ami-{number:017x}")
            db.add(StoreImage(**{**columns, "id": ids[-1], "name": f"busybox-{number:02d}",
                                 "creation_date": columns["creation_date"] - timedelta(seconds=AMIS - number)}))
    return [*ids, imported]


def _ids(answer: dict[str, Any]) -> list[str]:
    return [image["ImageId"] for image in answer["Images"]]


def test_kept_pages_show_changes_from_another_process(serve_process: ServeProcess, amis: list[str]) -> None:
    from kiln.services.accounts.accounts import create_access_key, create_account
    from kiln.store import api

    other = create_account("account-b")["Id"]
    a = serve_process.client("ec2")
    b = serve_process.client("ec2", key=create_access_key(other))
    pages = [a.describe_images(Owners=["self"], MaxResults=5) for _ in range(3)]
    assert [_ids(page) for page in pages] == [amis[:5]] * 3
    assert len({page["NextToken"] for page in pages}) == 1  # the same kept page, token and all
    assert all(b.describe_images()["Images"] == [] for _ in range(3))

    # the token of a kept page walks the rest of the list, as it was when the page was made
    api.create_tags(amis[0], {"role": "web"})
    walked = _ids(pages[-1])
    token = pages[-1]["NextToken"]
    while token:
        page = a.describe_images(Owners=["self"], MaxResults=5, NextToken=token)
        walked += _ids(page)
        token = page.get("NextToken")
    assert walked == amis

    first = a.describe_images(Owners=["self"], MaxResults=5)
    assert first["Images"][0]["Tags"] == [{"Key": "role", "Value": "web"}]
    assert first["NextToken"] != pages[0]["NextToken"]  # another answer, another snapshot

    api.modify_launch_permission(amis[3], add=[{"UserId": other}])
    assert _ids(b.describe_images()) == [amis[3]]
    assert _ids(b.describe_images(ExecutableUsers=["self"])) == [amis[3]]
    api.modify_launch_permission(amis[3], remove=[{"UserId": other}])
    assert b.describe_images()["Images"] == []
    assert b.describe_images(ExecutableUsers=["self"])["Images"] == []

    whole = _ids(a.describe_images(Owners=["self"]))
    assert whole == amis
    copy = api.copy_image(amis[-1], region="local", name="busybox-copy")
    assert _ids(a.describe_images(Owners=["self"])) == [*amis, copy]
    api.deregister_image(amis[1])
    assert _ids(a.describe_images(Owners=["self"])) == [amis[0], *amis[2:], copy]
    assert _ids(a.describe_images(Owners=["self"], MaxResults=5)) == [amis[0], *amis[2:6]]


def test_callers_asking_the_same_never_get_each_others_answer(serve_process: ServeProcess, amis: list[str],
                                                              busybox_dir: Path) -> None:
    """The same request body from two accounts: each its own AMIs, and a shared AMI's owner-only tags
    only for its owner."""
    from kiln.services.accounts.accounts import create_access_key, create_account
    from kiln.store import api

    other = create_account("account-b")["Id"]
    a = serve_process.client("ec2")
    b = serve_process.client("ec2", key=create_access_key(other))
    own = api.import_rootfs(busybox_dir, name="b-own", owner=other)
    api.create_tags(amis[2], {"secret": "owner", "ec2:SharedTag/team": "blue"})
    api.modify_launch_permission(amis[2], add=[{"UserId": other}])
    for _ in range(3):
        assert _ids(a.describe_images(Owners=["self"])) == amis
        assert _ids(b.describe_images(Owners=["self"])) == [own]
        mine = a.describe_images(ImageIds=[amis[2]])["Images"][0]
        shared = b.describe_images(ImageIds=[amis[2]])["Images"][0]
        assert {tag["Key"] for tag in mine["Tags"]} == {"secret", "ec2:SharedTag/team"}
        assert {tag["Key"] for tag in shared["Tags"]} == {"ec2:SharedTag/team"}


def _ec2_request_id(body: bytes) -> str:
    return str(ET.fromstring(body).findtext(f"{EC2_NS}requestId"))


def test_every_answer_has_its_own_request_id(serve_process: ServeProcess, amis: list[str]) -> None:
    body = b"Action=DescribeImages&Version=2016-11-15&Owner.1=self&MaxResults=5"
    answers = [raw(serve_process, "POST", "/", body, FORM, service="ec2") for _ in range(4)]
    assert [status for status, _, _ in answers] == [200] * 4
    ids = [_ec2_request_id(answer) for _, _, answer in answers]
    assert ids == [headers["x-amzn-requestid"] for _, headers, _ in answers]
    assert len(set(ids)) == 4
    rest = {answer.replace(request_id.encode(), b"") for (_, _, answer), request_id in zip(answers, ids, strict=True)}
    assert len(rest) == 1  # otherwise the same answer
    assert int(answers[-1][1]["content-length"]) == len(answers[-1][2])


def test_get_image_answers_follow_the_build(serve_process: ServeProcess, amis: list[str]) -> None:
    import json
    import urllib.parse

    from kiln.home import DEFAULT_ACCOUNT
    from kiln.services.builds import records

    arn = records.create_image(name="web", version="1.0.0",
                               recipe_arn=f"arn:aws:imagebuilder:local:{DEFAULT_ACCOUNT}:image-recipe/web/1.0.0",
                               infrastructure_arn=f"arn:aws:imagebuilder:local:{DEFAULT_ACCOUNT}:"
                                                  "infrastructure-configuration/b")
    path = "/GetImage?imageBuildVersionArn=" + urllib.parse.quote(arn, safe="")

    def get() -> tuple[dict[str, Any], str]:
        status, headers, body = raw(serve_process, "GET", path, service="imagebuilder")
        assert status == 200, body
        return json.loads(body), headers["x-amzn-requestid"]

    answers = [get() for _ in range(3)]
    assert [answer["requestId"] for answer, _ in answers] == [header for _, header in answers]
    assert len({header for _, header in answers}) == 3
    assert {answer["image"]["state"]["status"] for answer, _ in answers} == {"PENDING"}
    records.finish_available(arn, [{"region": "local", "image": amis[-1]}])
    answer, header = get()
    assert answer["image"]["state"]["status"] == "AVAILABLE" and answer["requestId"] == header
    assert re.fullmatch(r"[0-9a-f-]{36}", header)


def test_allowed_images_settings_changed_elsewhere_show_in_the_next_answer(serve_process: ServeProcess,
                                                                          amis: list[str]) -> None:
    """The kept bytes of an answer without ``ImageAllowed`` are not answered once another process turned
    the account's allowed images settings on, and are again once it turned them off."""
    from kiln.home import DEFAULT_ACCOUNT
    from kiln.services.accounts.accounts import create_access_key, create_account
    from kiln.services.ec2 import allowed_images
    from kiln.store import api

    other = create_account("account-b")["Id"]
    a = serve_process.client("ec2")
    b = serve_process.client("ec2", key=create_access_key(other))
    api.modify_launch_permission(amis[0], add=[{"Group": "all"}])
    for _ in range(3):
        assert all("ImageAllowed" not in image for image in a.describe_images(Owners=["self"])["Images"])
        assert _ids(b.describe_images(Owners=[DEFAULT_ACCOUNT])) == [amis[0]]
    allowed_images.replace_image_criteria([{"ImageNames": ["nothing-*"]}], account=other)
    allowed_images.enable_allowed_images_settings("enabled", account=other)
    allowed_images.enable_allowed_images_settings("audit-mode", account=DEFAULT_ACCOUNT)
    assert {image.get("ImageAllowed") for image in a.describe_images(Owners=["self"])["Images"]} == {True}
    assert b.describe_images(Owners=[DEFAULT_ACCOUNT])["Images"] == []  # not allowed, and not b's own
    allowed_images.disable_allowed_images_settings(account=DEFAULT_ACCOUNT)
    allowed_images.disable_allowed_images_settings(account=other)
    assert all("ImageAllowed" not in image for image in a.describe_images(Owners=["self"])["Images"])
    assert _ids(b.describe_images(Owners=[DEFAULT_ACCOUNT])) == [amis[0]]
