"""Every regional command takes ``--region``; a resource in another region is not found, as on EC2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kiln.services.accounts import regions
from kiln.services.builds import records
from kiln.services.ec2 import instances as service
from kiln.store import api

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")
OTHER = "eu-west-1"


@pytest.fixture
def busybox_ami(busybox_dir: Path) -> str:
    return api.import_rootfs(busybox_dir, name="busybox-base")


@pytest.fixture
def running(kiln, busybox_ami: str) -> str:
    regions.create_region(OTHER)
    launched = kiln("instance", "run", busybox_ami, "--output", "json")
    assert launched.exit_code == 0, launched.stderr
    instance_id = json.loads(launched.stdout)["InstanceId"]
    yield instance_id
    service.terminate_instance(instance_id)


def _state(instance_id: str) -> str:
    return service.describe_instance(instance_id, account=None)["State"]["Name"]


@needs_root
@pytest.mark.parametrize("verb", ["describe", "stop", "terminate", "console", "reboot"])
def test_an_instance_in_another_region_is_not_found(kiln, running: str, verb: str) -> None:
    refused = kiln("instance", verb, running, "--region", OTHER)
    assert refused.exit_code == 1
    # kiln's error form: the error, then the context it was refused in ("... in region eu-west-1")
    first, context = refused.stderr.strip().splitlines()
    assert first == f"error: InvalidInstanceID.NotFound: The instance ID '{running}' does not exist"
    assert context.endswith(f"in region {OTHER}")
    assert _state(running) == "running"  # nothing changed


@needs_root
def test_an_instance_is_found_in_its_own_region(kiln, running: str) -> None:
    described = kiln("instance", "describe", running, "--region", "local", "--output", "json")
    assert described.exit_code == 0, described.stderr
    assert json.loads(described.stdout)["InstanceId"] == running
    stopped = kiln("instance", "stop", running, "--region", "local")
    assert stopped.exit_code == 0, stopped.stderr
    assert _state(running) == "stopped"


@needs_root
def test_instance_list_shows_only_the_regions_instances(kiln, running: str) -> None:
    other = kiln("instance", "list", "--region", OTHER, "--output", "json")
    assert other.exit_code == 0, other.stderr
    assert json.loads(other.stdout)["Instances"] == []
    here = kiln("instance", "list", "--region", "local", "--output", "json")
    assert [i["InstanceId"] for i in json.loads(here.stdout)["Instances"]] == [running]


def _refused(result, *words: str) -> str:  # type: ignore[no-untyped-def]
    """The one error a refused command printed (plus kiln's context line, if any): it names ``words``."""
    assert result.exit_code == 1, result.stdout
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert all(word in result.stderr for word in words), result.stderr
    return result.stderr


def test_an_ami_in_another_region_is_not_found_nor_tagged(kiln, busybox_ami: str) -> None:
    regions.create_region(OTHER)
    _refused(kiln("image", "get", busybox_ami, "--region", OTHER), "InvalidAMIID.NotFound", busybox_ami, OTHER)
    _refused(kiln("image", "tag", busybox_ami, "team=a", "--region", OTHER), busybox_ami, OTHER)
    assert api.get_image(busybox_ami).tags == {}  # nothing changed
    assert kiln("image", "tag", busybox_ami, "team=a", "--region", "local").exit_code == 0
    assert api.get_image(busybox_ami).tags == {"team": "a"}
    _refused(kiln("image", "untag", busybox_ami, "team", "--region", OTHER), busybox_ami, OTHER)
    assert api.get_image(busybox_ami).tags == {"team": "a"}
    got = kiln("image", "get", busybox_ami, "--region", "local", "--output", "json")
    assert got.exit_code == 0 and json.loads(got.stdout)["ImageId"] == busybox_ami


@pytest.fixture
def pending_build() -> str:
    """An Image Builder image being built in region ``local`` (its record only: no build runs)."""
    regions.create_region(OTHER)
    arns = "arn:aws:imagebuilder:local:123456789012"
    return records.create_image(
        name="r", version="1.0.0", recipe_arn=f"{arns}:image-recipe/r/1.0.0",
        infrastructure_arn=f"{arns}:infrastructure-configuration/i",
    )


def test_an_image_builder_image_in_another_region_is_not_found(kiln, pending_build: str) -> None:
    for verb in ("get", "cancel", "logs"):
        _refused(kiln("image", verb, pending_build, "--region", OTHER), pending_build, OTHER)
    assert records.get_image(pending_build)["state"]["status"] == "PENDING"
    assert not records.cancel_requested(pending_build)  # nothing changed
    listed = kiln("image", "builds", "--region", OTHER, "--output", "json")
    assert listed.exit_code == 0 and json.loads(listed.stdout)["imageSummaryList"] == []
    listed = kiln("image", "builds", "--region", "local", "--output", "json")
    assert [i["arn"] for i in json.loads(listed.stdout)["imageSummaryList"]] == [pending_build]
    assert kiln("image", "cancel", pending_build, "--region", "local").exit_code == 0
    assert records.cancel_requested(pending_build)


def test_a_pipeline_in_another_region_is_not_found(kiln) -> None:
    from tests.pipelines.conftest import component, infrastructure, pipeline, recipe

    regions.create_region(OTHER)
    web = recipe("web", "1.0.0", "ami-0123456789abcdef0", [component("hello", "1.0.0")])
    arn = pipeline("nightly", web, infrastructure())
    for verb in ("executions", "images", "schedule"):
        _refused(kiln("pipeline", verb, arn, "--region", OTHER), arn, OTHER)
        _refused(kiln("pipeline", verb, "image-pipeline/nightly", "--region", OTHER), "nightly", OTHER)
        found = kiln("pipeline", verb, arn, "--region", "local", "--output", "json")
        assert found.exit_code == 0, found.stderr
    listed = kiln("pipeline", "executions", arn, "--output", "json")
    assert json.loads(listed.stdout) == {"executions": []}


def test_a_lifecycle_execution_in_another_region_is_not_cancelled(kiln) -> None:
    from datetime import UTC, datetime

    from kiln.db.engine import session
    from kiln.db.tables.lifecycle import LifecycleExecutionRow
    from kiln.services.lifecycle import policies

    regions.create_region(OTHER)
    execution = "lce-00000000-0000-4000-8000-000000000001"
    now = datetime.now(UTC)
    with session() as db:  # a run in progress of a policy in region local (no runner: only its record)
        db.add(LifecycleExecutionRow(id=execution, status="IN_PROGRESS", as_of=now, start_time=now,
                                     policy_arn="arn:aws:imagebuilder:local:123456789012:lifecycle-policy/p"))
    _refused(kiln("lifecycle", "cancel", execution, "--region", OTHER), execution, f"region {OTHER}")
    assert policies.get_execution(execution).state.status.value == "IN_PROGRESS"  # nothing changed
    assert kiln("lifecycle", "cancel", execution, "--region", "local").exit_code == 0
    assert policies.get_execution(execution).state.status.value == "CANCELLING"


# Global as on AWS (IAM, Organizations, the account and region registries) or not about resources at all.
GLOBAL = {
    ("demo",), ("scheduler",), ("serve",), ("events",), ("account",), ("org",), ("region",),
    ("component", "validate"), ("component", "run"),
    ("vulndb",),  # advisory data and package lists: no account's resources
}
# Regional but not of one account: the image store's upkeep covers every account's images in the region.
STORE_WIDE = {("store", "fsck"), ("store", "gc")}


def _commands(command, path: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    if hasattr(command, "commands"):  # a group (Typer may carry its own click)
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield path, command


def test_every_regional_command_takes_region_and_account() -> None:
    import typer

    from kiln.cli.main import app

    walked = list(_commands(typer.main.get_command(app)))
    assert len(walked) > 100  # the walk reached the leaves
    missing = []
    for path, command in walked:
        if any(path[: len(prefix)] == prefix for prefix in GLOBAL):
            continue
        flags = {flag for param in command.params for flag in getattr(param, "opts", [])}
        wanted = ("--region",) if path in STORE_WIDE else ("--region", "--account")
        missing += [f"kiln {' '.join(path)} {flag}" for flag in wanted if flag not in flags]
    assert missing == []
    assert all(any(path[: len(prefix)] == prefix for path, _ in walked) for prefix in GLOBAL)  # no stale entry
