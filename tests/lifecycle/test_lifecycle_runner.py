"""The runner against FAKE actions and a FAKE candidate source (the real store lands on another branch).

Covers: acting and recording, idempotency (running twice acts once), failures, the per-policy
lease, and a run killed with SIGKILL mid-way being completed by the next run without repeating
done steps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from lifecycle_fakes import (
    AS_OF,
    FakeActions,
    FakeCandidateSource,
    FakeCrash,
    FakeWorld,
    ami,
    body,
    image,
    rule,
)

from kiln.errors import Conflict, InvalidRequest
from kiln.services.lifecycle import policies
from kiln.services.lifecycle.runner import _acquire_lease, run

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"


def world_with(tmp_path: Path, images: list) -> FakeWorld:
    world = FakeWorld(tmp_path / "world.json")
    world.save_images(images)
    return world


def retiring_world(tmp_path: Path) -> FakeWorld:
    """Four builds of web/1.0.0; the policy keeps the newest one."""
    images = [
        image(b, days_old=50 - b, amis=[ami(f"ami-{b:017d}", snapshots={f"snap-{b:017d}": 100 * b})])
        for b in range(1, 5)
    ]
    return world_with(tmp_path, images)


def create(**overrides) -> str:
    data = body(rule("DELETE", "COUNT", 1, snapshots=True))
    data.update(overrides)
    return policies.create_policy(data)


def effective(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if not line.startswith("noop")]


EXPECTED = {
    *(f"deregister_ami ami-{b:017d}" for b in (1, 2, 3)),
    *(f"delete_snapshot snap-{b:017d}" for b in (1, 2, 3)),
    *(f"set_image_status:DELETED {image(b).arn}" for b in (1, 2, 3)),
}


def test_run_acts_records_and_reports(tmp_path: Path) -> None:
    world, log = retiring_world(tmp_path), tmp_path / "actions.log"
    arn = create()
    execution = run(arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, log))
    assert execution.state.status.value == "SUCCESS"
    assert execution.resourcesImpactedSummary == {"hasImpactedResources": True}
    assert set(effective(log)) == EXPECTED
    # AMI, its snapshot, then the image record: never an image marked deleted before its AMI
    lines = effective(log)
    assert lines.index(f"deregister_ami ami-{1:017d}") < lines.index(
        f"set_image_status:DELETED {image(1).arn}"
    )
    state = {i.arn: i.status for i in world.images()}
    assert state[image(4).arn] == "AVAILABLE" and state[image(1).arn] == "DELETED"
    assert world.load()["snapshots"] == [f"snap-{4:017d}"]

    top = policies.list_execution_resources(execution.lifecycleExecutionId)
    assert [r.resourceId for r in top] == [image(b).arn for b in (3, 2, 1)]
    assert {r.state.status.value for r in top} == {"SUCCESS"} and top[0].action.name.value == "DELETE"
    amis = policies.list_execution_resources(execution.lifecycleExecutionId, image(2).arn)
    assert [(a.resourceId, a.state.status.value) for a in amis] == [(f"ami-{2:017d}", "SUCCESS")]
    assert [(s.snapshotId, s.state.status.value) for s in amis[0].snapshots] == [
        (f"snap-{2:017d}", "SUCCESS")
    ]
    assert policies.get_policy(arn).dateLastRun is not None
    assert [e.lifecycleExecutionId for e in policies.list_executions(arn)] == [execution.lifecycleExecutionId]


def test_running_twice_acts_once(tmp_path: Path) -> None:
    world, log = retiring_world(tmp_path), tmp_path / "actions.log"
    arn = create()
    run(arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, log))
    before = log.read_text()
    second = run(arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, log))
    assert log.read_text() == before  # nothing touched at all the second time
    assert second.state.status.value == "SUCCESS"
    assert second.resourcesImpactedSummary == {"hasImpactedResources": False}


def test_failed_ami_keeps_image_and_snapshots(tmp_path: Path) -> None:
    world, log = retiring_world(tmp_path), tmp_path / "actions.log"
    arn = create()
    broken = f"ami-{2:017d}"
    execution = run(
        arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, log, fail={broken})
    )
    assert execution.state.status.value == "FAILED"
    assert execution.state.reason == "2 resource action(s) failed"  # the AMI, and so its image
    amis = policies.list_execution_resources(execution.lifecycleExecutionId, image(2).arn)
    assert amis[0].state.status.value == "FAILED" and "FAKE failure" in (amis[0].state.reason or "")
    assert amis[0].snapshots[0].state.status.value == "SKIPPED"
    top = {r.resourceId: r for r in policies.list_execution_resources(execution.lifecycleExecutionId)}
    assert top[image(2).arn].state.status.value == "FAILED"
    assert {i.arn: i.status for i in world.images()}[image(2).arn] == "AVAILABLE"
    assert f"snap-{2:017d}" in world.load()["snapshots"]


def test_excluded_resources_are_recorded_as_skipped(tmp_path: Path) -> None:
    used = ami(f"ami-{1:017d}", in_use_by=("instance i-0123456789abcdef0 (running)",))
    world = world_with(tmp_path, [image(2, days_old=1), image(1, days_old=40, amis=[used])])
    arn = create()
    execution = run(
        arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, tmp_path / "log")
    )
    top = policies.list_execution_resources(execution.lifecycleExecutionId)
    assert [(r.resourceId, r.state.status.value) for r in top] == [(image(1).arn, "SKIPPED")]
    amis = policies.list_execution_resources(execution.lifecycleExecutionId, image(1).arn)
    assert amis[0].state.status.value == "SKIPPED"
    assert "in use by instance i-0123456789abcdef0 (running)" in (amis[0].state.reason or "")


def test_disabled_policy_does_not_run(tmp_path: Path) -> None:
    world = retiring_world(tmp_path)
    arn = create(status="DISABLED")
    with pytest.raises(InvalidRequest, match="DISABLED"):
        run(arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, tmp_path / "log"))


def test_second_concurrent_run_is_refused(tmp_path: Path) -> None:
    world, log = retiring_world(tmp_path), tmp_path / "actions.log"
    arn = create()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        _acquire_lease(f"lifecycle:{arn}", f"{socket.gethostname()}:{sleeper.pid}:other")
        with pytest.raises(Conflict, match="is held by"):
            run(arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, log))
        assert not log.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    # the holder is gone: its lease is taken over
    execution = run(arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, log))
    assert execution.state.status.value == "SUCCESS"


SCRIPT = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    from pathlib import Path
    from lifecycle_fakes import FakeActions, FakeCandidateSource, FakeWorld
    from kiln.services.lifecycle.runner import run

    arn, world_path, log, as_of, pause_after = sys.argv[1:6]
    world = FakeWorld(Path(world_path))
    run(arn, as_of=datetime.fromisoformat(as_of), source=FakeCandidateSource(world),
        actions=FakeActions(world, Path(log), pause_after=int(pause_after)))
    """
)


def start_paused_run(arn: str, world: FakeWorld, log: Path, pause_after: int) -> subprocess.Popen[bytes]:
    """A real ``run`` in another process, FAKE actions sleeping after the ``pause_after``-th change."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(SRC)])}
    child = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, arn, str(world.path), str(log), AS_OF.isoformat(), str(pause_after)],
        env=env,
    )
    deadline = time.monotonic() + 60
    while not (log.exists() and len(effective(log)) >= pause_after):
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            child.wait()
            pytest.fail("the FAKE run never reached its pause")
        time.sleep(0.05)
    return child


def test_two_processes_running_one_policy_only_one_acts(tmp_path: Path) -> None:
    world, log = retiring_world(tmp_path), tmp_path / "actions.log"
    arn = create()
    child = start_paused_run(arn, world, log, pause_after=1)
    try:
        with pytest.raises(Conflict, match="is held by"):
            run(arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, log))
        assert len(effective(log)) == 1
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()


def test_run_killed_mid_way_is_completed_by_the_next_without_repeating(tmp_path: Path) -> None:
    world, log = retiring_world(tmp_path), tmp_path / "actions.log"
    arn = create()
    child = start_paused_run(arn, world, log, pause_after=4)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    done_before = effective(log)
    assert len(done_before) == 4

    [killed] = policies.list_executions(arn)
    assert killed.state.status.value == "IN_PROGRESS"
    with pytest.raises(Conflict, match="in progress"):
        policies.delete_policy(arn)

    execution = run(arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, log))
    lines = effective(log)
    assert lines[:4] == done_before
    assert sorted(lines) == sorted(EXPECTED)  # every change exactly once across both runs
    old = policies.get_execution(killed.lifecycleExecutionId)
    assert old.state.status.value == "SUCCESS"
    assert old.state.reason == f"interrupted; completed by {execution.lifecycleExecutionId}"
    assert old.endTime is not None
    assert execution.state.status.value == "SUCCESS"
    assert execution.resourcesImpactedSummary == {"hasImpactedResources": False}
    assert {i.status for i in world.images()} == {"DELETED", "AVAILABLE"}
    assert world.load()["snapshots"] == [f"snap-{4:017d}"]


def test_resume_rechecks_guards_an_ami_found_in_use_stays_with_its_image(tmp_path: Path) -> None:
    world, log = retiring_world(tmp_path), tmp_path / "actions.log"
    arn = create()
    with pytest.raises(FakeCrash):  # dies right after deregistering ami-2 (its 4th change)
        run(
            arn,
            as_of=AS_OF,
            source=FakeCandidateSource(world),
            actions=FakeActions(world, log, crash_after=4),
        )
    data = world.load()
    used = next(a for i in data["images"] for a in i["amis"] if a["image_id"] == f"ami-{1:017d}")
    used["in_use_by"] = ["launch template lt-0123456789abcdef0 version 3"]  # launched from meanwhile
    world._write(data)

    execution = run(arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, log))
    assert execution.state.status.value == "SUCCESS"
    assert f"deregister_ami ami-{1:017d}" not in effective(log)
    assert f"delete_snapshot snap-{2:017d}" in effective(log)  # the pending snapshot of ami-2 went
    statuses = {i.arn: i.status for i in world.images()}
    assert statuses[image(1).arn] == "AVAILABLE" and statuses[image(2).arn] == "DELETED"
    [_, old] = policies.list_executions(arn)
    old_top = {r.resourceId: r for r in policies.list_execution_resources(old.lifecycleExecutionId)}
    assert old_top[image(1).arn].state.status.value == "SKIPPED"
    [old_ami] = policies.list_execution_resources(old.lifecycleExecutionId, image(1).arn)
    assert (old_ami.state.reason or "").startswith("excluded on resume: in use by launch template")
    assert old_ami.snapshots[0].state.status.value == "SKIPPED"


def test_orphaned_snapshot_of_an_already_deregistered_ami_is_deleted(tmp_path: Path) -> None:
    gone = ami(f"ami-{1:017d}", state="deregistered", snapshots={"snap-orphan": 4096})
    world, log = (
        world_with(tmp_path, [image(2, days_old=1), image(1, days_old=40, amis=[gone])]),
        tmp_path / "log",
    )
    arn = create()
    execution = run(arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, log))
    assert effective(log) == ["delete_snapshot snap-orphan", f"set_image_status:DELETED {image(1).arn}"]
    [resource] = policies.list_execution_resources(execution.lifecycleExecutionId, image(1).arn)
    assert (resource.state.status.value, resource.state.reason, resource.action.name.value) == (
        "SUCCESS",
        "already deregistered",
        "DELETE",
    )
    assert resource.snapshots[0].state.status.value == "SUCCESS"


def test_cancel_stops_before_the_next_step_and_undoes_nothing(tmp_path: Path) -> None:
    world, log = retiring_world(tmp_path), tmp_path / "actions.log"
    arn = create()

    def cancel_after_second(changes: int) -> None:
        if changes == 2:
            policies.cancel_execution(policies.list_executions(arn)[0].lifecycleExecutionId)

    actions = FakeActions(world, log, after_change=cancel_after_second)
    execution = run(arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=actions)
    assert execution.state.status.value == "CANCELLED"
    assert effective(log) == [f"deregister_ami ami-{3:017d}", f"delete_snapshot snap-{3:017d}"]
    top = {r.resourceId: r.state for r in policies.list_execution_resources(execution.lifecycleExecutionId)}
    assert top[image(3).arn].status.value == "SKIPPED"
    assert top[image(3).arn].reason == "execution cancelled before this step"
    assert policies.cancel_execution(execution.lifecycleExecutionId) == execution.lifecycleExecutionId
    assert policies.get_execution(execution.lifecycleExecutionId).state.status.value == "CANCELLED"
    # the next run picks up where the policy says, from the world as it is now
    again = run(arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, log))
    assert again.state.status.value == "SUCCESS"
    assert sorted(effective(log)) == sorted(EXPECTED)


def test_cancelling_a_finished_execution_is_refused(tmp_path: Path) -> None:
    world = retiring_world(tmp_path)
    arn = create()
    done = run(
        arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, tmp_path / "log")
    )
    with pytest.raises(Conflict, match="already ended"):
        policies.cancel_execution(done.lifecycleExecutionId)


def test_put_policy_creates_updates_or_leaves_unchanged() -> None:
    data = body(rule("DELETE", "COUNT", 2))
    arn, outcome = policies.put_policy(data)
    assert outcome == "created"
    assert policies.put_policy(data) == (arn, "unchanged")
    changed = body(rule("DELETE", "COUNT", 3))
    assert policies.put_policy(changed) == (arn, "updated")
    assert policies.get_policy(arn).policyDetails[0].filter.value == 3
    assert policies.put_policy(changed) == (arn, "unchanged")
