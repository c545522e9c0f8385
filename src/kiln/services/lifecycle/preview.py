"""Rendering a lifecycle Plan: a plain-text table and JSON, both byte-identical for the same plan."""

from __future__ import annotations

import json
from typing import Any

from kiln.services.lifecycle.rules import Decision, Plan

COLUMNS = ("RESOURCE", "KIND", "ACCOUNT", "REGION", "ACTION", "BYTES", "EXCLUSION", "REASON")
_BYTES = COLUMNS.index("BYTES")


def _exclusion(decision: Decision) -> str:
    """The exclusion rule that held, as ``name=value`` (``-`` when none did)."""
    if decision.exclusion is None:
        return "-"
    name, value = decision.exclusion
    return f"{name}={value}"


def _row(decision: Decision, depth: int) -> tuple[str, ...]:
    return (
        "  " * depth + decision.resource_id,
        decision.kind,
        decision.account or "",
        decision.region or "",
        decision.action,
        str(decision.bytes) if decision.kind == "snapshot" else "",
        _exclusion(decision),
        decision.reason,
    )


def rows(plan: Plan) -> list[tuple[str, ...]]:
    depth = {"image": 0, "ami": 1, "snapshot": 2}
    return [_row(decision, depth[decision.kind]) for decision, _ in plan.decisions()]


def to_text(plan: Plan, *, policy: str | None = None) -> str:
    """A fixed-width table (no terminal-dependent wrapping) followed by a summary."""
    body = rows(plan)
    widths = [max([len(COLUMNS[i])] + [len(r[i]) for r in body]) for i in range(len(COLUMNS) - 1)]
    lines = []
    title = f"lifecycle preview as of {plan.as_of.isoformat()}"
    lines.append(title + (f" for {policy}" if policy else ""))
    for row in [COLUMNS, *body]:
        cells = [
            cell.ljust(widths[i]) if i != _BYTES else cell.rjust(widths[i]) for i, cell in enumerate(row[:-1])
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    summary = plan.summary()
    lines.append("")
    lines.append("summary: " + ", ".join(f"{k}={v}" for k, v in summary.items() if not k.startswith("bytes")))
    lines.append(f"bytes freed: {summary['bytes_freed']}")
    if summary["bytes_left_in_orphaned_snapshots"]:
        lines.append(
            f"bytes left in snapshots of deregistered AMIs: {summary['bytes_left_in_orphaned_snapshots']}"
            " (set includeResources.snapshots to delete them)"
        )
    return "\n".join(lines) + "\n"


def _decision_json(decision: Decision, parent: str | None) -> dict[str, Any]:
    return {
        "action": decision.action,
        "account": decision.account,
        "bytes": decision.bytes,
        "exclusion": (
            None
            if decision.exclusion is None
            else {"rule": decision.exclusion[0], "value": decision.exclusion[1]}
        ),
        "kind": decision.kind,
        "parent": parent,
        "reason": decision.reason,
        "region": decision.region,
        "resourceId": decision.resource_id,
        "rule": decision.rule,
    }


def to_data(plan: Plan, *, policy: str | None = None) -> dict[str, Any]:
    return {
        "asOf": plan.as_of.isoformat(),
        "policy": policy,
        "resources": [_decision_json(d, parent) for d, parent in plan.decisions()],
        "summary": plan.summary(),
    }


def to_json(plan: Plan, *, policy: str | None = None) -> str:
    """One line of JSON with sorted keys (no indent: the C encoder, fast for 100,000 images)."""
    return json.dumps(to_data(plan, policy=policy), sort_keys=True) + "\n"
