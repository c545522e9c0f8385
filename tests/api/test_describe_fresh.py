"""A ``kiln serve`` process keeps DescribeImages answers in memory, and the next DescribeImages after a
change made by another OS process (this test's, through the store) shows it: a tag added, a launch
permission granted and taken back, an AMI deregistered."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import ServeProcess


def _images(client, **kwargs) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {image["ImageId"]: image for image in client.describe_images(**kwargs)["Images"]}


def test_changes_from_another_process_show_in_the_next_answer(serve_process: ServeProcess, kiln_home: Path,
                                                              busybox_dir: Path) -> None:
    from kiln.services.accounts.accounts import create_access_key, create_account
    from kiln.store import api

    ami = api.import_rootfs(busybox_dir, name="busybox-base")
    copy = api.copy_image(ami, region="local", name="busybox-copy")
    other_id = create_account("account-b")["Id"]
    a = serve_process.client("ec2")
    b = serve_process.client("ec2", key=create_access_key(other_id))
    for _ in range(3):  # kept in the server's memory
        assert set(_images(a, Owners=["self"])) == {ami, copy}
        assert _images(a)[copy].get("Tags", []) == []
        assert _images(b) == {}

    api.create_tags(copy, {"role": "web"})
    assert _images(a, Owners=["self"])[copy]["Tags"] == [{"Key": "role", "Value": "web"}]
    assert _images(a, Owners=["self"])[ami].get("Tags", []) == []

    api.modify_launch_permission(ami, add=[{"UserId": other_id}])
    assert set(_images(b)) == {ami}
    assert set(_images(b, ExecutableUsers=["self"])) == {ami}
    api.modify_launch_permission(ami, remove=[{"UserId": other_id}])
    assert _images(b) == {}

    api.deregister_image(copy)
    assert set(_images(a, Owners=["self"])) == {ami}
    assert set(_images(a, Owners=["self"], Filters=[{"Name": "state", "Values": ["deregistered"]}])) == {copy}
