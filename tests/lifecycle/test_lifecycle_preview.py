"""Preview rendering: complete, explained, and byte-identical for the same input."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from lifecycle_fakes import AS_OF, ami, image, policy, rule

from kiln.services.lifecycle import preview as lifecycle_preview
from kiln.services.lifecycle.rules import evaluate


def scenario() -> list:
    return [
        image(3, days_old=5, amis=[ami("ami-00000000000000003", snapshots={"snap-3": 300})]),
        image(2, days_old=60, amis=[ami("ami-00000000000000002", snapshots={"snap-2a": 200, "snap-2b": 20})]),
        image(
            1,
            days_old=90,
            amis=[
                ami("ami-00000000000000001", region="b-region", snapshots={"snap-1": 100}),
                ami(
                    "ami-0000000000000001a",
                    region="a-region",
                    in_use_by=("instance i-0aaaaaaaaaaaaaaaa (stopped)",),
                ),
            ],
        ),
        image(
            1,
            version="2.0.0",
            days_old=40,
            amis=[ami("ami-00000000000000004", last_launched=AS_OF - timedelta(1))],
        ),
    ]


POLICY = policy(
    rule(
        "DELETE",
        "AGE",
        30,
        "DAYS",
        snapshots=True,
        exclusions={"amis": {"lastLaunched": {"value": 7, "unit": "DAYS"}}},
    )
)


def test_text_and_json_are_byte_identical_across_runs_and_input_orders() -> None:
    images = scenario()
    text = lifecycle_preview.to_text(evaluate(POLICY, images, as_of=AS_OF), policy="p")
    data = lifecycle_preview.to_json(evaluate(POLICY, images, as_of=AS_OF), policy="p")
    for seed in range(4):
        shuffled = images[:]
        random.Random(seed).shuffle(shuffled)
        plan = evaluate(POLICY, shuffled, as_of=AS_OF)
        assert lifecycle_preview.to_text(plan, policy="p") == text
        assert lifecycle_preview.to_json(plan, policy="p") == data


def test_text_lists_every_resource_with_action_reason_and_bytes() -> None:
    text = lifecycle_preview.to_text(evaluate(POLICY, scenario(), as_of=AS_OF))
    lines = text.splitlines()
    assert lines[0] == f"lifecycle preview as of {AS_OF.isoformat()}"
    assert lines[1].split() == ["RESOURCE", "KIND", "ACCOUNT", "REGION", "ACTION", "BYTES", "EXCLUSION", "REASON"]
    row = next(line for line in lines if line.strip().startswith("snap-2a"))
    assert row.split()[:7] == ["snap-2a", "snapshot", "123456789012", "local", "delete", "200", "-"]
    kept = next(line for line in lines if line.strip().startswith("ami-0000000000000001a"))
    assert "excluded: in use by instance i-0aaaaaaaaaaaaaaaa (stopped)" in kept
    # image 2's snapshots and image 1's deregistered AMI's; image 1's record stays with its in-use AMI
    assert "bytes freed: 320" in text
    launched = next(line for line in lines if line.strip().startswith("ami-00000000000000004"))
    assert "excluded: launched" in launched and " exclusionRules.amis.lastLaunched=7 days " in launched


def test_json_has_stable_sorted_keys_and_summary() -> None:
    data = json.loads(lifecycle_preview.to_json(evaluate(POLICY, scenario(), as_of=AS_OF), policy="p"))
    assert list(data) == ["asOf", "policy", "resources", "summary"]
    first = data["resources"][0]
    assert list(first) == sorted(first)
    ids = [r["resourceId"] for r in data["resources"]]
    assert ids.index("ami-0000000000000001a") < ids.index(
        "ami-00000000000000001"
    )  # region order within image
    assert data["summary"]["bytes_freed"] == 320
    assert data["summary"]["snapshots_delete"] == 3
    by_id = {r["resourceId"]: r for r in data["resources"]}
    assert by_id["snap-2a"]["parent"] == "ami-00000000000000002"
    assert by_id["ami-00000000000000002"]["parent"] == image(2).arn
    held = {"rule": "exclusionRules.amis.lastLaunched", "value": "7 days"}
    assert by_id["ami-00000000000000004"]["exclusion"] == held
    assert by_id["ami-00000000000000002"]["exclusion"] is None
    assert (by_id[image(2).arn]["account"], by_id[image(2).arn]["region"]) == ("123456789012", "local")
