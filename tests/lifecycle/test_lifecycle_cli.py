"""``kiln lifecycle …`` in-process: exit codes, printed ARNs, JSON shapes; preview with a FAKE candidate source."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lifecycle_fakes import AS_OF, FakeActions, FakeCandidateSource, FakeWorld, ami, body, image, rule

from kiln.services.lifecycle.runner import register_actions, register_source

ARN = "arn:aws:imagebuilder:local:123456789012:lifecycle-policy/retire-old"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    data = body(rule("DELETE", "COUNT", 1, snapshots=True))
    data["tags"] = {"team": "platform"}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def fake_source(tmp_path: Path) -> Iterator[FakeWorld]:
    world = FakeWorld(tmp_path / "world.json")
    world.save_images(
        [
            image(2, days_old=1, amis=[ami("ami-00000000000000002", snapshots={"snap-2": 2048})]),
            image(1, days_old=9, amis=[ami("ami-00000000000000001", snapshots={"snap-1": 4096})]),
        ]
    )
    register_source(FakeCandidateSource(world))
    yield world
    register_source(None)


def test_create_get_list_delete(kiln, policy_file: Path) -> None:
    code, out, _ = kiln("lifecycle", "create", "--cli-input-yaml", str(policy_file))
    assert (code, out.strip()) == (0, ARN)

    code, out, err = kiln("lifecycle", "create", "--cli-input-yaml", str(policy_file))
    assert code != 0 and "already exists" in err

    code, out, _ = kiln("lifecycle", "get", ARN, "--output", "json")
    got = json.loads(out)["lifecyclePolicy"]
    assert code == 0
    assert (got["arn"], got["name"], got["status"], got["tags"]) == (
        ARN,
        "retire-old",
        "ENABLED",
        {"team": "platform"},
    )
    assert got["policyDetails"][0]["filter"] == {"type": "COUNT", "value": 1}

    code, out, _ = kiln("lifecycle", "list", "--output", "json")
    summaries = json.loads(out)["lifecyclePolicySummaryList"]
    assert code == 0 and [s["arn"] for s in summaries] == [ARN]
    assert "policyDetails" not in summaries[0]

    code, out, _ = kiln("lifecycle", "delete", "retire-old", "--output", "json")
    assert (code, json.loads(out)) == (0, {"lifecyclePolicyArn": ARN})

    code, _, err = kiln("lifecycle", "get", ARN)
    assert code != 0 and "not found" in err


def test_create_json_and_update(kiln, tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(body()))
    code, out, _ = kiln("lifecycle", "create", "--cli-input-json", f"file://{path}", "--output", "json")
    assert code == 0 and json.loads(out)["lifecyclePolicyArn"] == ARN

    update = body(rule("DEPRECATE", "AGE", 2, "WEEKS"))
    del update["name"]
    update |= {"lifecyclePolicyArn": ARN, "status": "DISABLED", "description": "weekly"}
    path.write_text(json.dumps(update))
    code, out, _ = kiln("lifecycle", "update", "--cli-input-json", str(path))
    assert (code, out.strip()) == (0, ARN)
    code, out, _ = kiln("lifecycle", "list", "--status", "DISABLED", "--output", "json")
    [summary] = json.loads(out)["lifecyclePolicySummaryList"]
    assert (summary["status"], summary["description"]) == ("DISABLED", "weekly")


def test_bad_input_is_one_line_naming_the_field(kiln, tmp_path: Path) -> None:
    bad = body(rule("DELETE", "COUNT", 5, "DAYS"))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    code, out, err = kiln("lifecycle", "create", "--cli-input-yaml", str(path))
    assert code != 0 and out == ""
    assert err.splitlines()[0] == "error: policyDetails[0].filter: a COUNT filter takes no unit"

    code, _, err = kiln("lifecycle", "create", "--cli-input-yaml", str(tmp_path / "missing.yaml"))
    assert code != 0 and "cannot read" in err
    code, _, err = kiln("lifecycle", "create")
    assert code != 0 and "exactly one of --cli-input-yaml or --cli-input-json" in err


def test_preview_text_and_json(kiln, policy_file: Path, fake_source: FakeWorld) -> None:
    kiln("lifecycle", "create", "--cli-input-yaml", str(policy_file))
    code, out, _ = kiln("lifecycle", "preview", "retire-old", "--as-of", AS_OF.isoformat())
    assert code == 0
    assert out.splitlines()[0] == f"lifecycle preview as of {AS_OF.isoformat()} for {ARN}"
    assert "bytes freed: 4096" in out

    code, out, _ = kiln("lifecycle", "preview", ARN, "--as-of", "2026-06-15T12:00:00Z", "--output", "json")
    data = json.loads(out)
    assert code == 0
    actions = {r["resourceId"]: r["action"] for r in data["resources"]}
    assert actions == {
        image(2).arn: "none",
        "ami-00000000000000002": "none",
        "snap-2": "none",
        image(1).arn: "delete",
        "ami-00000000000000001": "delete",
        "snap-1": "delete",
    }
    assert data["summary"]["bytes_freed"] == 4096
    _, again, _ = kiln("lifecycle", "preview", ARN, "--as-of", AS_OF.isoformat(), "--output", "json")
    assert again == out  # deterministic
    assert fake_source.load()["snapshots"] == ["snap-1", "snap-2"]  # preview changed nothing

    code, _, err = kiln("lifecycle", "preview", ARN, "--as-of", "yesterday")
    assert code != 0 and "--as-of" in err

    # without --as-of: now, by the one clock KILN_CLOCK moves
    code, out, _ = kiln("lifecycle", "preview", ARN, env={"KILN_CLOCK": AS_OF.isoformat()})
    assert code == 0 and out.splitlines()[0] == f"lifecycle preview as of {AS_OF.isoformat()} for {ARN}"


def test_preview_without_a_candidate_source_is_a_clear_error(kiln, tmp_path: Path, policy_file: Path) -> None:
    """No candidate source registered (as in a fresh ``kiln`` process): preview reads kiln's own records."""
    register_source(None)
    create = kiln("lifecycle", "create", "--cli-input-yaml", str(policy_file))
    assert create.exit_code == 0 and create.stdout.strip() == ARN
    preview = kiln("lifecycle", "preview", ARN)
    # Without a registered source the preview reads kiln's own (empty) image records and store.
    assert preview.exit_code == 0, preview.stderr
    missing = kiln("lifecycle", "delete", "nope-policy")
    assert missing.exit_code != 0 and "not found" in missing.stderr


def test_apply_then_executions_and_resources(kiln, tmp_path, policy_file, fake_source) -> None:
    kiln("lifecycle", "create", "--cli-input-yaml", str(policy_file))
    register_actions(FakeActions(fake_source, tmp_path / "actions.log"))
    try:
        code, out, _ = kiln("lifecycle", "apply", "retire-old", "--as-of", AS_OF.isoformat(), "--output", "json")
    finally:
        register_actions(None)
    execution = json.loads(out)["lifecycleExecution"]
    assert code == 0 and execution["state"]["status"] == "SUCCESS"
    assert execution["lifecycleExecutionId"].startswith("lce-")

    code, out, _ = kiln("lifecycle", "executions", ARN, "--output", "json")
    assert code == 0
    assert [e["lifecycleExecutionId"] for e in json.loads(out)["lifecycleExecutions"]] == [
        execution["lifecycleExecutionId"]
    ]
    eid = execution["lifecycleExecutionId"]
    code, out, _ = kiln("lifecycle", "execution-resources", eid, "--output", "json")
    data = json.loads(out)
    assert code == 0 and data["lifecycleExecutionState"]["status"] == "SUCCESS"
    assert [(r["resourceId"], r["action"]["name"]) for r in data["resources"]] == [(image(1).arn, "DELETE")]
    code, out, _ = kiln("lifecycle",
        "execution-resources",
        eid,
        "--parent-resource-id",
        image(1).arn,
        "--output",
        "json",
    )
    [resource] = json.loads(out)["resources"]
    assert resource["resourceId"] == "ami-00000000000000001"
    assert resource["snapshots"] == [
        {"snapshotId": "snap-1", "state": {"status": "SUCCESS", "reason": "done"}}
    ]

    code, _, err = kiln("lifecycle", "execution-resources", "lce-nope")
    assert code != 0 and "not a lifecycle execution id" in err
    code, _, err = kiln("lifecycle", "apply", "retire-old")
    assert code == 0, err  # kiln's own store and image records: nothing old enough to act on
