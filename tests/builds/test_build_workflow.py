"""Builds end to end over a busybox parent: AMIs, tags, steps, failures, cache, cancellation."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiln.errors import KilnError
from kiln.services.builds import records as images
from kiln.services.builds.workflow import BuildFailed, create_and_build

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")


def _build(arns: dict[str, str], **options: object) -> dict:
    return create_and_build(
        recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"],
        distribution_arn=arns["distribution"], **options,  # type: ignore[arg-type]
    )


def _run_in(ami: str, *argv: str) -> str:
    from kiln.runtime import instances
    from kiln.runtime.exec import exec_in
    from kiln.services.ec2.instances import run_instance

    instance = run_instance(ami)
    try:
        return exec_in(instance.id, list(argv), timeout=30).stdout
    finally:
        instances.terminate(instance.id, force=True)


def _registered_amis() -> set[str]:
    from kiln.store.api import describe_images

    return {image.id for image in describe_images(include_deprecated=True, include_disabled=True)}


def test_a_build_makes_a_tested_tagged_shared_ami(make_recipe) -> None:
    from kiln.store.api import get_image

    arns = make_recipe(
        "echo built-by-kiln > /etc/motd\nrm /etc/remove-me",
        validate="grep -q built-by-kiln /etc/motd",
        test="test ! -e /etc/remove-me && grep -q built-by-kiln /etc/motd",
    )
    image = _build(arns)
    assert image["state"]["status"] == "AVAILABLE"
    assert image["arn"].endswith(":image/web/1.0.0/1")
    [ami] = image["outputResources"]["amis"]
    info = get_image(ami["image"])
    assert info.name.startswith("web-") and info.name.endswith("-1")
    assert info.tags["Ec2ImageBuilderArn"] == image["arn"]
    assert info.tags["team"] == "platform" and "kiln:CreationDate" in info.tags
    assert {"UserId": "210987654321"} in info.launch_permissions
    assert _run_in(ami["image"], "cat", "/etc/motd").strip() == "built-by-kiln"
    assert "remove-me" not in _run_in(ami["image"], "ls", "/etc")
    steps = [(s["name"], s["status"]) for s in images.list_steps(image["arn"])]
    assert ("ApplyBuildComponents", "COMPLETED") in steps
    assert ("ApplyTestComponents", "COMPLETED") in steps
    assert ("CreateOutputAMI", "COMPLETED") in steps
    assert image["osVersion"].startswith("Busybox")
    from kiln.runtime.instances import list_instances

    assert not list_instances(states=("pending", "running", "stopping", "stopped"))
    from kiln.services.common.events import list_events

    changes = [e["detail"]["state"]["status"] for e in list_events() if e["arn"] == image["arn"]]
    assert changes == ["PENDING", "CREATING", "BUILDING", "TESTING", "DISTRIBUTING", "AVAILABLE"]


def test_build_numbers_increase_per_recipe_version(make_recipe) -> None:
    arns = make_recipe("true")
    first = _build(arns, tests_enabled=False)
    second = _build(arns, tests_enabled=False, use_cache=False)
    assert first["arn"].endswith("/1") and second["arn"].endswith("/2")
    assert first["outputResources"]["amis"][0]["image"] != second["outputResources"]["amis"][0]["image"]


def test_a_failing_test_leaves_no_ami_and_no_instance(make_recipe) -> None:
    before = _registered_amis()
    arns = make_recipe("echo x > /etc/x", test="echo the test failed; exit 3")
    with pytest.raises(BuildFailed) as failure:
        _build(arns)
    image = images.list_images(name="web")[-1]
    assert image["state"]["status"] == "FAILED"
    assert "test" in image["state"]["reason"]
    assert _registered_amis() == before
    assert "kiln image logs" in (failure.value.hint or "")
    from kiln.runtime.instances import list_instances

    assert not list_instances(states=("pending", "running", "stopping", "stopped"))


def test_a_failed_build_keeps_its_instance_when_asked(make_recipe) -> None:
    from kiln.runtime.exec import exec_in
    from kiln.runtime.instances import list_instances

    arns = make_recipe("echo half-done > /root/state; exit 7", keep_on_failure=True)
    with pytest.raises(KilnError):
        _build(arns)
    image = images.list_images(name="web")[-1]
    assert image["state"]["status"] == "FAILED"
    [kept] = list_instances(states=("running",))
    assert kept.id in image["state"]["reason"]
    assert exec_in(kept.id, ["cat", "/root/state"], timeout=30).stdout.strip() == "half-done"


def test_identical_inputs_hit_the_cache_and_share_every_blob(make_recipe) -> None:
    from kiln.store.api import image_layers

    arns = make_recipe("dd if=/dev/urandom of=/opt.bin bs=64k count=4 2>/dev/null")
    first = _build(arns, tests_enabled=False)
    second = _build(arns, tests_enabled=False)
    assert second["kilnCachedFrom"] == first["arn"]
    first_ami = first["outputResources"]["amis"][0]["image"]
    second_ami = second["outputResources"]["amis"][0]["image"]
    assert first_ami != second_ami
    first_layers = [layer.digest for layer in image_layers(first_ami)]
    second_layers = [layer.digest for layer in image_layers(second_ami)]
    assert second_layers[: len(first_layers)] == first_layers
    assert images.packages(second["arn"]) == images.packages(first["arn"])
    third = _build(arns, tests_enabled=False, use_cache=False)
    assert "kilnCachedFrom" not in third


def test_a_changed_component_misses_the_cache(make_recipe) -> None:
    first = _build(make_recipe("echo one > /etc/v"), tests_enabled=False)
    second = _build(make_recipe("echo two > /etc/v", version="1.0.1"), tests_enabled=False)
    assert "kilnCachedFrom" not in second
    assert _run_in(second["outputResources"]["amis"][0]["image"], "cat", "/etc/v").strip() == "two"
    assert first["arn"] != second["arn"]


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached")


def _start_build_process(arns: dict[str, str], kiln_home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kiln", "image", "create", "--recipe", arns["recipe"],
         "--infrastructure", arns["infrastructure"], "--no-tests"],
        env={**os.environ, "KILN_HOME": str(kiln_home)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.slow
def test_cancel_stops_a_running_build(make_recipe, kiln_home: Path) -> None:
    before = _registered_amis()
    arns = make_recipe("touch /tmp/started; sleep 4")
    process = _start_build_process(arns, kiln_home)
    try:
        _wait_for(lambda: any(i["state"]["status"] == "BUILDING" for i in images.list_images(name="web")))
        arn = images.list_images(name="web")[-1]["arn"]
        images.request_cancel(arn)
        assert process.wait(timeout=120) != 0
    finally:
        process.kill()
    assert images.get_image(arn)["state"]["status"] == "CANCELLED"
    assert _registered_amis() == before


def test_a_killed_build_is_marked_interrupted_and_cleaned(kiln, make_recipe, kiln_home: Path) -> None:
    from kiln.db.engine import reset_engines
    from kiln.runtime.instances import list_instances

    arns = make_recipe("sleep 60")
    process = _start_build_process(arns, kiln_home)
    try:
        _wait_for(lambda: any(i["state"]["status"] == "BUILDING" for i in images.list_images(name="web")))
        time.sleep(0.5)
    finally:
        process.kill()  # SIGKILL: no clean-up code runs
        process.wait()
    arn = images.list_images(name="web")[-1]["arn"]
    assert images.get_image(arn)["state"]["status"] == "BUILDING"
    reset_engines()  # the next kiln command opens the database afresh, which runs recovery
    result = kiln("image", "builds", "--output", "json")
    assert result.exit_code == 0, result.stderr
    image = images.get_image(arn)
    assert image["state"]["status"] == "FAILED"
    assert image["state"]["reason"].startswith("interrupted")
    assert not list_instances(states=("pending", "running", "stopping", "stopped"))


def test_cli_captures_an_instance_and_shows_images(kiln, parent_ami: str) -> None:
    import json

    from kiln.runtime import instances
    from kiln.runtime.exec import exec_in
    from kiln.services.ec2.instances import run_instance

    instance = run_instance(parent_ami)
    exec_in(instance.id, ["sh", "-c", "echo captured > /etc/marker"], timeout=30)
    created = kiln("image", "create", "--instance", instance.id, "--name", "captured", "--output", "json")
    instances.terminate(instance.id, force=True)
    assert created.exit_code == 0, created.stderr
    ami = json.loads(created.stdout)["ImageId"]
    assert _run_in(ami, "cat", "/etc/marker").strip() == "captured"
    shown = kiln("image", "get", ami, "--output", "json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["Name"] == "captured"


def test_recovery_terminates_instances_of_builds_that_are_over(parent_ami: str) -> None:
    from kiln.runtime.instances import get
    from kiln.services.builds.recovery import recover_interrupted_builds
    from kiln.services.ec2.instances import run_instance

    arn = images.create_image(name="web", version="1.0.0", recipe_arn="arn:r", infrastructure_arn="arn:i")
    images.set_status(arn, "FAILED", "boom")
    stray = run_instance(parent_ami, tags={"kiln:ImageArn": arn, "kiln:Purpose": "build"}, owned=True)
    unrelated = run_instance(parent_ami)
    try:
        recover_interrupted_builds()
        assert get(stray.id).state == "terminated"
        assert get(unrelated.id).state == "running"
    finally:
        from kiln.runtime.instances import terminate

        terminate(unrelated.id, force=True)
