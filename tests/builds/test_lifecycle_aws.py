"""A local lifecycle policy deleting kiln images also removes what was published from them to AWS
(moto's server): the AMIs deregistered, their snapshots deleted, the publications forgotten. An AWS that
cannot be reached then (a closed loopback port) keeps the removal, and the retry removes it once the
endpoint answers again."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest
from tests.aws.proxy import FaultProxy
from tests.aws.test_publish_removals import images_and_snapshots, publications
from tests.builds.test_lifecycle_store import _keep_newest_policy
from tests.conftest import MotoServer

from kiln.db.base import utcnow
from kiln.services.builds import records as images
from kiln.services.builds.workflow import create_and_build
from kiln.services.lifecycle.runner import run
from kiln.services.publishing import removals
from kiln.services.publishing.aws import publish_image

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")


def test_a_lifecycle_delete_removes_the_images_published_amis_on_aws(make_recipe, aws: MotoServer) -> None:  # type: ignore[no-untyped-def]
    arns = make_recipe("echo built > /etc/built")
    built = [create_and_build(recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"],
                              distribution_arn=arns["distribution"], tests_enabled=False, use_cache=False)
             for _ in range(3)]
    local = [image["outputResources"]["amis"][0]["image"] for image in built]
    direct = publish_image(local[0], region="us-east-1", endpoint_url=aws.endpoint)
    with FaultProxy(aws.endpoint) as proxy:  # the second goes through a proxy that is then closed
        behind = publish_image(local[1], region="us-east-1", endpoint_url=proxy.endpoint)
        port = urlsplit(proxy.endpoint).port
    newest = publish_image(local[2], region="us-east-1", endpoint_url=aws.endpoint)

    execution = run(_keep_newest_policy(), as_of=utcnow())  # deletes the two older images
    assert execution.state.status.value == "SUCCESS"
    assert [images.get_image(image["arn"])["state"]["status"] for image in built] == ["DELETED", "DELETED",
                                                                                     "AVAILABLE"]
    amis, snapshots = images_and_snapshots(aws)
    assert direct["AmiId"] not in amis and direct["SnapshotId"] not in snapshots  # removed on AWS at once
    assert sorted(amis) == sorted([behind["AmiId"], newest["AmiId"]])  # the newest stays; one unreachable
    [kept] = removals.pending()
    assert kept.reach["amiId"] == behind["AmiId"] and "lifecycle" in kept.reason and kept.last_error

    with FaultProxy(aws.endpoint, port=port or 0):  # reachable again
        assert removals.retry_pending() == ([behind["AmiId"]], 0)
    assert images_and_snapshots(aws) == ([newest["AmiId"]], [newest["SnapshotId"]])
    assert publications() == 1
