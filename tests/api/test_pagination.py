"""Paging 2,500 items with boto3's paginators, in both protocols: Image Builder's ListImages (rest-json,
``maxResults`` 1..100) and EC2's DescribeImages (query, ``MaxResults`` 5..1000). Every item comes exactly
once, in the same order whatever the page size; a page size out of range, a token kiln did not give, and
a token of another operation or another account are each the service's own error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server

COUNT = 2500
SMALL_PAGES = 50  # pages of the smallest size before the walk goes on with big pages


def _code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def _walk(paginator: Any, key: str, small: int, big: int, **params: Any) -> tuple[list[str], list[int]]:
    """Item ids and page sizes: ``SMALL_PAGES`` pages of ``small``, then the rest by ``big`` from the
    last small page's token (a token does not depend on the page size)."""
    ids: list[str] = []
    sizes: list[int] = []
    token = None
    for number, page in enumerate(paginator.paginate(**params, PaginationConfig={"PageSize": small})):
        ids += [item[key] for item in page[list_key(page)]]
        sizes.append(len(page[list_key(page)]))
        token = page.get("NextToken") or page.get("nextToken")
        if number + 1 == SMALL_PAGES:
            break
    assert token, "the small pages ended early"
    for page in paginator.paginate(**params, PaginationConfig={"PageSize": big, "StartingToken": token}):
        ids += [item[key] for item in page[list_key(page)]]
        sizes.append(len(page[list_key(page)]))
    return ids, sizes


def list_key(page: dict[str, Any]) -> str:
    return next(key for key, value in page.items() if isinstance(value, list))


@pytest.fixture
def image_versions(kiln_home: Path) -> list[str]:
    """2,500 image versions (one build each), through the services; their ARNs in ListImages' order."""
    from kiln.services.builds import records

    arns = [records.create_image(name=f"img-{number:04d}", version="1.0.0",
                                 recipe_arn=f"arn:aws:imagebuilder:local:123456789012:image-recipe/img-{number:04d}/1.0.0",
                                 infrastructure_arn="arn:aws:imagebuilder:local:123456789012:"
                                                    "infrastructure-configuration/build")
            for number in range(COUNT)]
    return sorted(arn.rsplit("/", 1)[0] for arn in arns)


def test_image_builder_list_images_by_1_and_by_100(server: Server, image_versions: list[str]) -> None:
    client = server.client()
    paginator = client.get_paginator("list_images")
    ids, sizes = _walk(paginator, "arn", 1, 100)
    assert ids == image_versions  # every version once, in order
    assert sizes[:SMALL_PAGES] == [1] * SMALL_PAGES and set(sizes[SMALL_PAGES:]) == {100, 50}

    assert _code(client.list_images, maxResults=1000) == "InvalidParameterValueException"
    assert _code(client.list_images, nextToken="bm90LWEtdG9rZW4=") == "InvalidPaginationTokenException"
    token = client.list_images(maxResults=1)["nextToken"]
    assert client.list_images(maxResults=1, nextToken=token)["imageVersionList"][0]["arn"] == image_versions[1]
    assert _code(client.list_components, nextToken=token) == "InvalidPaginationTokenException"
    assert _code(client.list_images, nextToken=token, byName=True) == "InvalidPaginationTokenException"


@pytest.fixture
def amis(kiln_home: Path, busybox_dir: Path) -> list[str]:
    """2,500 AMIs of the default account: one imported, the rest registered on its snapshot in one
    transaction (2,500 imports would take minutes; DescribeImages reads only these rows)."""
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.store import StoreImage
    from kiln.store import api

    first = api.import_rootfs(busybox_dir, name="busybox-0000")
    with session() as db:
        source = db.scalars(select(StoreImage).where(StoreImage.id == first)).one()
        columns = {c.key: getattr(source, c.key) for c in StoreImage.__table__.columns}
        for number in range(1, COUNT):
            db.add(StoreImage(**{**columns, "id": f"ami-{number:017x}", "name": f"busybox-{number:04d}"}))
    with session() as db:
        return sorted(db.scalars(select(StoreImage.id)))


def test_ec2_describe_images_by_5_and_by_1000(server: Server, amis: list[str]) -> None:
    ec2 = server.client("ec2")
    paginator = ec2.get_paginator("describe_images")
    ids, sizes = _walk(paginator, "ImageId", 5, 1000, Owners=["self"])
    assert sorted(ids) == amis and len(ids) == len(set(ids)) == COUNT
    assert sizes[:SMALL_PAGES] == [5] * SMALL_PAGES and sizes[SMALL_PAGES:] == [1000, 1000, 250]
    big = [i["ImageId"] for p in paginator.paginate(Owners=["self"], PaginationConfig={"PageSize": 1000})
           for i in p["Images"]]
    assert big == ids  # the same stable order whatever the page size
    assert len(ec2.describe_images(Owners=["self"])["Images"]) == COUNT  # no MaxResults: one page

    assert _code(ec2.describe_images, MaxResults=1) == "InvalidMaxResults"
    assert _code(ec2.describe_images, MaxResults=1001) == "InvalidMaxResults"
    assert _code(ec2.describe_images, MaxResults=5, NextToken="garbage") == "InvalidNextToken"
    token = ec2.describe_images(Owners=["self"], MaxResults=5)["NextToken"]
    assert _code(ec2.describe_snapshots, MaxResults=5, NextToken=token) == "InvalidNextToken"
    assert _code(ec2.describe_images, MaxResults=5, NextToken=token, Owners=["amazon"]) == "InvalidNextToken"

    from kiln.services.accounts.accounts import create_access_key, create_account

    other = server.client("ec2", key=create_access_key(create_account("account-b")["Id"]))
    assert _code(other.describe_images, Owners=["self"], MaxResults=5, NextToken=token) == "InvalidNextToken"


def test_a_walk_sees_the_list_as_its_first_page_did(server: Server) -> None:
    client = server.client()
    for name in ("b-infra", "c-infra", "d-infra"):
        client.create_infrastructure_configuration(name=name, instanceProfileName="builder")
    first = client.list_infrastructure_configurations(maxResults=2)
    client.create_infrastructure_configuration(name="a-infra", instanceProfileName="builder")  # sorts first
    client.delete_infrastructure_configuration(
        infrastructureConfigurationArn=first["infrastructureConfigurationSummaryList"][1]["arn"])
    rest = client.list_infrastructure_configurations(maxResults=2, nextToken=first["nextToken"])
    names = [s["name"] for page in (first, rest) for s in page["infrastructureConfigurationSummaryList"]]
    assert names == ["b-infra", "c-infra", "d-infra"] and "nextToken" not in rest
    fresh = client.list_infrastructure_configurations()["infrastructureConfigurationSummaryList"]
    assert [s["name"] for s in fresh] == ["a-infra", "b-infra", "d-infra"]
