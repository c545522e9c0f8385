"""``kiln asg``: groups from launch template versions with the service's validation errors (nothing
changed on refusal), and reconcile passes that launch real sandboxes up to the desired capacity,
replace exited instances and terminate extras in the default termination policy's order."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")


@pytest.fixture
def ami(kiln, busybox_dir: Path) -> str:
    return kiln("image", "import", str(busybox_dir), "--name", "golden-web").stdout.strip()


@pytest.fixture
def template(kiln, ami: str) -> str:
    created = kiln("launch-template", "create", "web", "--launch-template-data", json.dumps({"ImageId": ami}))
    assert created.exit_code == 0, created.stderr
    return created.stdout.strip()


def _json(kiln, *args: str) -> dict:
    result = kiln(*args, "--output", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _group(kiln, name: str = "web-asg") -> dict:
    groups = _json(kiln, "asg", "describe", name)["AutoScalingGroups"]
    assert len(groups) == 1
    return groups[0]


def _running(kiln) -> list[dict]:
    return [i for i in _json(kiln, "instance", "list")["Instances"] if i["State"]["Name"] == "running"]


def test_create_describe_update_and_validation(kiln, template: str) -> None:
    created = kiln("asg", "create", "web-asg", "--launch-template", "web,$Latest", "--min-size", "1",
                   "--max-size", "3", "--tag", "team=web")
    assert created.exit_code == 0, created.stderr
    assert created.stdout.startswith("arn:aws:autoscaling:local:") and created.stdout.strip().endswith(
        ":autoScalingGroupName/web-asg")
    group = _group(kiln)
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (1, 3, 1)  # desired defaults to min
    assert group["LaunchTemplate"] == {"LaunchTemplateId": template, "LaunchTemplateName": "web", "Version": "$Latest"}
    assert group["Tags"][0]["Key"] == "team" and group["Tags"][0]["PropagateAtLaunch"] is True

    table = kiln("asg", "describe").stdout.splitlines()
    assert table[0].split() == ["Name", "LaunchTemplate", "Version", "Min", "Max", "Desired", "InService", "Status"]
    assert table[1].split() == ["web-asg", "web", "$Latest", "1", "3", "1", "0"]

    taken = kiln("asg", "create", "web-asg", "--launch-template", "web", "--min-size", "0", "--max-size", "1")
    assert taken.exit_code == 1
    assert taken.stderr.startswith(
        "error: AlreadyExists: AutoScalingGroupName: AutoScalingGroup by this name already exists")

    # MinSize above the desired capacity moves it up, as the service does.
    assert _json(kiln, "asg", "update", "web-asg", "--min-size", "2")["DesiredCapacity"] == 2
    assert kiln("asg", "set-desired-capacity", "web-asg", "--desired-capacity", "3").stdout == "3\n"
    above = kiln("asg", "set-desired-capacity", "web-asg", "--desired-capacity", "4")
    assert above.exit_code == 1 and above.stderr.splitlines()[0] == (
        "error: ValidationError: DesiredCapacity: New SetDesiredCapacity value 4 is above max value 3 for the "
        "AutoScalingGroup.")
    assert _json(kiln, "asg", "describe-auto-scaling-groups", "nope") == {"AutoScalingGroups": []}
    unknown = kiln("asg", "set-desired-capacity", "nope", "--desired-capacity", "1")
    assert unknown.exit_code == 1
    assert "AutoScalingGroup name not found - AutoScalingGroup nope not found" in unknown.stderr


@pytest.mark.parametrize(("args", "first_line"), [
    (["--launch-template", "web", "--min-size", "3", "--max-size", "2"],
     "error: ValidationError: MaxSize: Max bound, 2, must be greater than or equal to min bound, 3"),
    (["--launch-template", "web", "--min-size", "1", "--max-size", "2", "--desired-capacity", "5"],
     "error: ValidationError: DesiredCapacity: Desired capacity:5 must be between the specified min size:1 and "
     "max size:2"),
    (["--launch-template", "web,7", "--min-size", "0", "--max-size", "1"],
     "error: ValidationError: LaunchTemplate.Version: You must use a valid fully-formed launch template. "
     "Could not find launch template version 7 of {template} (web)"),
    (["--launch-template", "nope", "--min-size", "0", "--max-size", "1"],
     "error: ValidationError: LaunchTemplate: You must use a valid fully-formed launch template. "
     "The specified launch template, with template name nope, does not exist."),
])
def test_bad_input_is_one_clear_error_and_creates_nothing(kiln, template: str, args: list[str],
                                                          first_line: str) -> None:
    refused = kiln("asg", "create", "web-asg", *args)
    assert refused.exit_code == 1
    assert refused.stderr.splitlines()[0] == first_line.format(template=template)
    assert "Traceback" not in refused.stderr
    assert _json(kiln, "asg", "describe") == {"AutoScalingGroups": []}


def test_latest_of_a_deleted_template_is_refused(kiln, template: str) -> None:
    kiln("asg", "create", "web-asg", "--launch-template", "web", "--min-size", "0", "--max-size", "2")
    assert kiln("launch-template", "delete", "web").exit_code == 0
    refused = kiln("asg", "update", "web-asg", "--launch-template", f"{template},$Latest", "--max-size", "5")
    assert refused.exit_code == 1
    assert refused.stderr.splitlines()[0] == (
        f"error: ValidationError: LaunchTemplate: You must use a valid fully-formed launch template. "
        f"The specified launch template, with template ID {template}, does not exist.")
    assert _group(kiln)["MaxSize"] == 2  # nothing changed
    # The group still names the deleted template: a pass cannot launch, says why, and launches nothing.
    kiln("asg", "set-desired-capacity", "web-asg", "--desired-capacity", "1")
    failed = kiln("asg", "reconcile", "web-asg")
    assert failed.exit_code == 1
    assert failed.stderr.splitlines()[0] == (
        f"error: web-asg: Launching a new EC2 instance failed: InvalidLaunchTemplateId.NotFound: The specified "
        f"launch template, with template ID {template}, does not exist.")
    assert _json(kiln, "instance", "list")["Instances"] == []


@needs_root
def test_reconcile_launches_replaces_exited_and_scales_in(kiln, template: str, ami: str) -> None:
    kiln("asg", "create", "web-asg", "--launch-template", "web,1", "--min-size", "0", "--max-size", "4",
         "--desired-capacity", "2", "--tag", "team=web")
    launched = _json(kiln, "asg", "reconcile", "web-asg")["Groups"][0]["Launched"]
    assert len(launched) == 2
    running = {i["InstanceId"]: i for i in _running(kiln)}
    assert set(running) == set(launched)
    tags = {t["Key"]: t["Value"] for t in running[launched[0]]["Tags"]}
    assert tags["aws:autoscaling:groupName"] == "web-asg" and tags["team"] == "web"
    assert tags["aws:ec2launchtemplate:id"] == template and tags["aws:ec2launchtemplate:version"] == "1"
    assert running[launched[0]]["ImageId"] == ami
    assert [i["LifecycleState"] for i in _group(kiln)["Instances"]] == ["InService", "InService"]

    # At desired capacity with every process alive, a pass does nothing.
    assert _json(kiln, "asg", "reconcile")["Groups"] == []

    # An instance whose process ended is unhealthy: terminated and replaced.
    os.kill(running[launched[0]]["Kiln"]["InitPid"], signal.SIGKILL)
    assert _group(kiln)["Instances"][0]["HealthStatus"] == "Unhealthy"
    report = _json(kiln, "asg", "reconcile", "web-asg")["Groups"][0]
    assert report["Terminated"] == [launched[0]] and len(report["Launched"]) == 1
    assert {i["InstanceId"] for i in _running(kiln)} == {launched[1], report["Launched"][0]}

    # Scale in: the extra goes, by the default termination policy (here: closest to its billing hour).
    kiln("asg", "set-desired-capacity", "web-asg", "--desired-capacity", "1")
    report = _json(kiln, "asg", "reconcile", "web-asg")["Groups"][0]
    assert report["Launched"] == [] and report["Terminated"] == [launched[1]]
    assert [i["InstanceId"] for i in _running(kiln)] == report_ids(_group(kiln))


def report_ids(group: dict) -> list[str]:
    return [i["InstanceId"] for i in group["Instances"]]


@needs_root
def test_delete_refuses_with_instances_unless_forced(kiln, template: str) -> None:
    kiln("asg", "create", "web-asg", "--launch-template", "web", "--min-size", "1", "--max-size", "1")
    kiln("asg", "reconcile")
    refused = kiln("asg", "delete", "web-asg")
    assert refused.exit_code == 1 and refused.stderr.startswith(
        "error: ResourceInUse: AutoScalingGroupName: You cannot delete an AutoScalingGroup while there are instances")
    assert len(_running(kiln)) == 1 and _group(kiln)["DesiredCapacity"] == 1

    kiln("asg", "start-instance-refresh", "web-asg")
    busy = kiln("asg", "delete", "web-asg")
    assert busy.exit_code == 1 and busy.stderr.startswith("error: ScalingActivityInProgress:")

    assert kiln("asg", "delete", "web-asg", "--force-delete").exit_code == 0
    assert _running(kiln) == []
    assert _json(kiln, "asg", "describe") == {"AutoScalingGroups": []}


def test_groups_keep_their_images_in_use(kiln, template: str, ami: str, busybox_dir: Path) -> None:
    from kiln.services.lifecycle.candidates import _users_by_image

    newer = kiln("image", "import", str(busybox_dir), "--name", "golden-web-2").stdout.strip()
    kiln("asg", "create", "web-asg", "--launch-template", "web,1", "--min-size", "0", "--max-size", "1")
    kiln("launch-template", "create-version", "web", "--launch-template-data", json.dumps({"ImageId": newer}))
    kiln("launch-template", "modify", "web", "--default-version", "2")
    # The template's $Default and $Latest are version 2 now: only the group still launches the first AMI.
    users = _users_by_image()
    assert users[ami] == [f"Auto Scaling group web-asg (launch template {template} version 1)"]
    assert users[newer] == [f"launch template {template} (web) version 2 ($Default/$Latest)"]

    kiln("asg", "update", "web-asg", "--launch-template", "web,$Default")
    assert ami not in _users_by_image()


@needs_root
def test_the_scheduler_starts_a_worker_only_when_a_group_has_work(kiln, template: str) -> None:
    from datetime import timedelta

    from kiln.db.base import utcnow
    from kiln.schedule.scheduler import Scheduler, pool_start
    from kiln.schedule.workers import WorkerPool
    from kiln.services.registry import scheduler_jobs
    from kiln.services.startup import install

    assert [job.key for job in scheduler_jobs()] == []  # no group, no job
    kiln("asg", "create", "web-asg", "--launch-template", "web", "--min-size", "1", "--max-size", "1")
    pool = WorkerPool(initializer=install)
    loop = Scheduler(pool_start(pool), jobs=scheduler_jobs)
    now = utcnow()
    loop.tick(now)
    assert [key for key in loop.entries] == ["autoscaling:reconcile"]
    assert loop.tick(now + timedelta(minutes=1))  # due: the group has no instance yet, a worker runs the pass
    pool.wait()
    assert [f.exitcode for f in pool.finished] == [0]
    assert len(_running(kiln)) == 1 and _group(kiln)["Instances"][0]["LifecycleState"] == "InService"

    assert loop.tick(now + timedelta(minutes=2))  # due and claimed, but idle: no worker
    pool.wait()
    assert len(pool.finished) == 1


@needs_root
def test_force_delete_waits_for_a_live_pass_and_ignores_a_dead_one(kiln, template: str) -> None:
    import socket
    import subprocess

    from kiln.schedule.leases import acquire, new_holder, release
    from kiln.services.fleet.autoscaling import lease_name

    kiln("asg", "create", "web-asg", "--launch-template", "web", "--min-size", "1", "--max-size", "1")
    kiln("asg", "reconcile")
    arn = _group(kiln)["AutoScalingGroupARN"]
    live = new_holder()  # this process: a pass at work on the group
    assert acquire(lease_name(arn), live, 900)
    assert kiln("asg", "delete", "web-asg", "--force-delete").exit_code == 0
    assert _group(kiln)["Status"] == "Delete in progress" and len(_running(kiln)) == 1
    release(lease_name(arn), live)
    assert _json(kiln, "asg", "reconcile")["Groups"][0]["Skipped"] == "deleted"
    assert _running(kiln) == [] and _json(kiln, "asg", "describe") == {"AutoScalingGroups": []}

    # A pass killed -9 leaves its lease behind; it blocks nothing.
    kiln("asg", "create", "web-asg", "--launch-template", "web", "--min-size", "0", "--max-size", "1")
    ended = subprocess.Popen(["true"])
    ended.wait()
    arn = _group(kiln)["AutoScalingGroupARN"]
    assert acquire(lease_name(arn), f"{socket.gethostname()}:{ended.pid}:dead", 900)
    assert kiln("asg", "delete", "web-asg").exit_code == 0


def test_a_refresh_whose_template_is_deleted_fails_with_the_reason(kiln, template: str) -> None:
    kiln("asg", "create", "web-asg", "--launch-template", "web,1", "--min-size", "0", "--max-size", "1")
    kiln("asg", "start-instance-refresh", "web-asg", "--desired-launch-template", "web,1")
    kiln("launch-template", "delete", "web")
    assert _json(kiln, "asg", "reconcile")["Groups"][0]["InstanceRefreshStatus"] == "Failed"
    [refresh] = _json(kiln, "asg", "describe-instance-refreshes", "web-asg")["InstanceRefreshes"]
    assert refresh["StatusReason"].startswith(f"cannot launch from {template} version 1: InvalidLaunchTemplateId")
