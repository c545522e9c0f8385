"""``kiln asg start-instance-refresh``: real instances replaced in batches that keep the healthy
count at MinHealthyPercentage (checked after every pass), SkipMatching, AutoRollback on a failing
health check, cancel, bad preferences refused with nothing recorded, and a refresh that survives a
reconcile process killed with SIGKILL in the middle of a launch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")
SRC = Path(__file__).resolve().parents[2] / "src"


def _data(ami: str, instance_type: str = "t3.micro", health: str | None = None) -> str:
    data: dict = {"ImageId": ami, "InstanceType": instance_type}
    if health is not None:
        data["TagSpecifications"] = [{"ResourceType": "instance",
                                      "Tags": [{"Key": "kiln:HealthCheckCommand", "Value": health}]}]
    return json.dumps(data)


@pytest.fixture
def ami(kiln, busybox_dir: Path) -> str:
    return kiln("image", "import", str(busybox_dir), "--name", "golden-web").stdout.strip()


@pytest.fixture
def template(kiln, ami: str) -> str:
    """Version 1: no health check; version 2: a passing one; version 3: a failing one."""
    template_id = kiln("launch-template", "create", "web", "--launch-template-data", _data(ami)).stdout.strip()
    for health in ("test -d /bin", "exit 3"):
        created = kiln("launch-template", "create-version", "web", "--launch-template-data",
                       _data(ami, "t3.small", health))
        assert created.exit_code == 0, created.stderr
    return template_id


def _json(kiln, *args: str) -> dict:
    result = kiln(*args, "--output", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _instances(kiln) -> list[dict]:
    return _json(kiln, "asg", "describe", "web-asg")["AutoScalingGroups"][0]["Instances"]


def _refresh(kiln) -> dict:
    return _json(kiln, "asg", "describe-instance-refreshes", "web-asg")["InstanceRefreshes"][0]


def _running_ids(kiln) -> set[str]:
    return {i["InstanceId"] for i in _json(kiln, "instance", "list")["Instances"] if i["State"]["Name"] == "running"}


def _group_of(kiln, desired: int, version: str = "1") -> list[str]:
    kiln("asg", "create", "web-asg", "--launch-template", f"web,{version}", "--min-size", "0", "--max-size", "6",
         "--desired-capacity", str(desired))
    launched = _json(kiln, "asg", "reconcile", "web-asg")["Groups"][0]["Launched"]
    assert len(launched) == desired
    return launched


def _healthy_in_service(kiln) -> int:
    running = _running_ids(kiln)
    return sum(1 for i in _instances(kiln) if i["LifecycleState"] == "InService" and i["InstanceId"] in running)


def test_min_healthy_66_replaces_three_keeping_two_healthy_at_every_pass(kiln, template: str) -> None:
    original = _group_of(kiln, 3)
    started = kiln("asg", "start-instance-refresh", "web-asg", "--desired-launch-template", "web,2",
                   "--min-healthy-percentage", "66", "--instance-warmup", "0")
    assert started.exit_code == 0, started.stderr
    assert _refresh(kiln)["Status"] == "Pending" and _refresh(kiln)["InstancesToUpdate"] == 3

    percentages = []
    for _ in range(10):
        report = _json(kiln, "asg", "reconcile", "web-asg")["Groups"][0]
        assert len(report["Terminated"]) <= 1  # ceil(3 * 66 %) = 2 must stay healthy: one at a time
        assert _healthy_in_service(kiln) >= 2
        percentages.append(_refresh(kiln)["PercentageComplete"])
        if report["InstanceRefreshStatus"] == "Successful":
            break
    refresh = _refresh(kiln)
    assert refresh["Status"] == "Successful" and refresh["PercentageComplete"] == 100
    assert percentages == sorted(percentages) and 0 < percentages[1] < 100
    instances = _instances(kiln)
    assert len(instances) == 3 and not {i["InstanceId"] for i in instances} & set(original)
    assert {i["LaunchTemplate"]["Version"] for i in instances} == {"2"}
    assert {i["LifecycleState"] for i in instances} == {"InService"}
    assert _running_ids(kiln) == {i["InstanceId"] for i in instances}  # nothing else left running
    # On success the desired configuration becomes the group's.
    group = _json(kiln, "asg", "describe", "web-asg")["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "2"


def test_skip_matching_keeps_instances_already_on_the_configuration(kiln, template: str) -> None:
    original = _group_of(kiln, 2)
    kiln("asg", "update", "web-asg", "--launch-template", "web,2", "--desired-capacity", "3")
    matching = _json(kiln, "asg", "reconcile", "web-asg")["Groups"][0]["Launched"]
    assert len(matching) == 1
    kiln("asg", "start-instance-refresh", "web-asg", "--skip-matching", "--min-healthy-percentage", "50",
         "--instance-warmup", "0")
    assert _refresh(kiln)["InstancesToUpdate"] == 2
    for _ in range(8):
        if _json(kiln, "asg", "reconcile", "web-asg")["Groups"][0].get("InstanceRefreshStatus") == "Successful":
            break
    assert _refresh(kiln)["Status"] == "Successful"
    ids = {i["InstanceId"] for i in _instances(kiln)}
    assert matching[0] in ids and not ids & set(original) and len(ids) == 3


def test_auto_rollback_on_a_failing_health_check(kiln, template: str) -> None:
    original = _group_of(kiln, 2)
    irreversible = kiln("asg", "start-instance-refresh", "web-asg", "--desired-launch-template", "web,$Latest",
                        "--auto-rollback")
    assert irreversible.exit_code == 1 and irreversible.stderr.startswith("error: IrreversibleInstanceRefresh:")
    kiln("asg", "start-instance-refresh", "web-asg", "--desired-launch-template", "web,3",
         "--min-healthy-percentage", "50", "--instance-warmup", "0", "--auto-rollback")
    statuses = []
    for _ in range(8):
        report = _json(kiln, "asg", "reconcile", "web-asg")["Groups"][0]
        statuses.append(report["InstanceRefreshStatus"])
        assert _healthy_in_service(kiln) >= 1
        if statuses[-1] == "RollbackSuccessful":
            break
    assert "RollbackInProgress" in statuses and statuses[-1] == "RollbackSuccessful"
    refresh = _refresh(kiln)
    assert "exited 3" in refresh["RollbackDetails"]["RollbackReason"]
    assert refresh["PercentageComplete"] == 0  # counted back down from where the refresh was
    instances = _instances(kiln)
    assert {i["LaunchTemplate"]["Version"] for i in instances} == {"1"} and len(instances) == 2
    assert set(original) - {i["InstanceId"] for i in instances}  # one was replaced, then rolled back
    assert _json(kiln, "asg", "describe", "web-asg")["AutoScalingGroups"][0]["LaunchTemplate"]["Version"] == "1"
    assert _running_ids(kiln) == {i["InstanceId"] for i in instances}


def test_without_rollback_a_failing_health_check_fails_the_refresh(kiln, template: str) -> None:
    _group_of(kiln, 1)
    kiln("asg", "start-instance-refresh", "web-asg", "--desired-launch-template", "web,3",
         "--min-healthy-percentage", "0", "--instance-warmup", "0")
    for _ in range(4):
        if _json(kiln, "asg", "reconcile", "web-asg")["Groups"][0].get("InstanceRefreshStatus") == "Failed":
            break
    refresh = _refresh(kiln)
    assert refresh["Status"] == "Failed" and "kiln:HealthCheckCommand" not in refresh["StatusReason"]
    assert "(exit 3) exited 3" in refresh["StatusReason"]
    # The group keeps its configuration and is brought back to capacity from it.
    _json(kiln, "asg", "reconcile", "web-asg")
    instances = _instances(kiln)
    assert [i["LaunchTemplate"]["Version"] for i in instances] == ["1"]


def test_bad_preferences_and_refresh_conflicts(kiln, template: str) -> None:
    kiln("asg", "create", "web-asg", "--launch-template", "web,1", "--min-size", "0", "--max-size", "2")
    too_high = kiln("asg", "start-instance-refresh", "web-asg", "--min-healthy-percentage", "150")
    assert too_high.exit_code == 1
    assert too_high.stderr.splitlines()[0] == (
        "error: ValidationError: Preferences.MinHealthyPercentage: 1 validation error detected: Value '150' at "
        "'preferences.minHealthyPercentage' failed to satisfy constraint: Member must have value less than or "
        "equal to 100")
    unsorted = kiln("asg", "start-instance-refresh", "web-asg", "--checkpoint-percentages", "50,20")
    assert unsorted.exit_code == 1 and "ascending" in unsorted.stderr
    unknown = kiln("asg", "start-instance-refresh", "web-asg", "--desired-launch-template", "web,9")
    assert unknown.exit_code == 1 and "You must use a valid fully-formed launch template" in unknown.stderr
    assert _json(kiln, "asg", "describe-instance-refreshes", "web-asg") == {"InstanceRefreshes": []}

    refresh_id = kiln("asg", "start-instance-refresh", "web-asg").stdout.strip()
    second = kiln("asg", "start-instance-refresh", "web-asg")
    assert second.exit_code == 1 and second.stderr.startswith("error: InstanceRefreshInProgress:")
    assert kiln("asg", "cancel-instance-refresh", "web-asg").stdout.strip() == refresh_id
    assert _refresh(kiln)["Status"] == "Cancelled"
    again = kiln("asg", "cancel-instance-refresh", "web-asg")
    assert again.exit_code == 1 and again.stderr.startswith("error: ActiveInstanceRefreshNotFound:")


def _pending_replacement(kiln_home: Path) -> bool:
    from kiln.runtime import records

    return any(i.tags.get("aws:ec2launchtemplate:version") == "2" for i in records.select(states=["pending"]))


def test_refresh_survives_sigkill_of_the_reconcile_process(kiln, template: str, kiln_home: Path) -> None:
    original = _group_of(kiln, 3)
    kiln("asg", "start-instance-refresh", "web-asg", "--desired-launch-template", "web,2",
         "--min-healthy-percentage", "66", "--instance-warmup", "0")
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    killed = 0
    for _ in range(4):
        process = subprocess.Popen([sys.executable, "-m", "kiln", "asg", "reconcile", "web-asg"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while process.poll() is None and not _pending_replacement(kiln_home):
                time.sleep(0.005)
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)  # mid-launch: the instance row exists, the sandbox maybe not
                killed += 1
        finally:
            process.wait()
        if killed:
            break
    assert killed == 1

    for _ in range(10):
        report = _json(kiln, "asg", "reconcile", "web-asg")["Groups"]
        if report and report[0].get("InstanceRefreshStatus") == "Successful":
            break
    assert _refresh(kiln)["Status"] == "Successful"
    instances = _instances(kiln)
    final = {i["InstanceId"] for i in instances}
    assert len(final) == 3 and {i["LaunchTemplate"]["Version"] for i in instances} == {"2"}
    assert not final & set(original)
    everything = _json(kiln, "instance", "list")["Instances"]
    assert {i["InstanceId"] for i in everything if i["State"]["Name"] != "terminated"} == final  # none leaked
    from kiln.runtime import overlay

    assert len(overlay.mounts_under(kiln_home)) == 3  # one root volume per running instance, no more


def test_a_checkpoint_holds_the_refresh_for_its_delay(kiln, template: str) -> None:
    _group_of(kiln, 2)
    kiln("asg", "start-instance-refresh", "web-asg", "--desired-launch-template", "web,2",
         "--min-healthy-percentage", "50", "--instance-warmup", "0", "--checkpoint-percentages", "50,100",
         "--checkpoint-delay", "3600")
    terminated = []
    for _ in range(4):
        terminated += _json(kiln, "asg", "reconcile", "web-asg")["Groups"][0]["Terminated"]
    refresh = _refresh(kiln)
    assert len(terminated) == 1  # half replaced, then the checkpoint holds for an hour
    assert (refresh["Status"], refresh["PercentageComplete"]) == ("InProgress", 50)
    assert refresh["StatusReason"] == "Waiting at checkpoint 50% for 3600 s"
    assert sorted(i["LaunchTemplate"]["Version"] for i in _instances(kiln)) == ["1", "2"]
