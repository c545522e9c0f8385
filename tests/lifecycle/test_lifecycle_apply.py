from __future__ import annotations

from pathlib import Path

from kiln.services.apply import apply_file
from kiln.services.lifecycle.policies import get_policy

POLICY = """
kind: LifecyclePolicy
name: keep-five
description: delete all but the five newest images
executionRole: arn:aws:iam::123456789012:role/lifecycle
resourceType: AMI_IMAGE
policyDetails:
  - action: {type: DELETE, includeResources: {amis: true, snapshots: true}}
    filter: {type: COUNT, value: %d}
resourceSelection:
  recipes:
    - {name: web, semanticVersion: 1.x.x}
"""


def test_apply_creates_then_updates_a_lifecycle_policy(tmp_path: Path) -> None:
    stack = tmp_path / "policy.yaml"
    stack.write_text(POLICY % 5)
    first = apply_file(stack)
    assert [(o.kind, o.status) for o in first.outcomes] == [("LifecyclePolicy", "created")]
    again = apply_file(stack)
    assert [o.status for o in again.outcomes] == ["unchanged"]
    stack.write_text(POLICY % 3)
    changed = apply_file(stack)
    assert [o.status for o in changed.outcomes] == ["updated"]
    assert get_policy(changed.outcomes[0].arn).policyDetails[0].filter.value == 3
