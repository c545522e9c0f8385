"""The scheduler's compliance jobs: each ComplianceRule with a schedule audits the fleet at its due
times and records one ``Kiln Compliance Violation`` event per resource out of policy (webhooks
deliver them like every other event)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kiln.services.common.unit import unit_of_work

KEY_PREFIX = "compliance:"
VIOLATION_EVENT = "Kiln Compliance Violation"


def resource_arn(finding: Any) -> str:
    if finding.arn:
        return str(finding.arn)
    kinds = {"instance": "ec2:{r}:{a}:instance/", "launch-template": "ec2:{r}:{a}:launch-template/"}
    prefix = kinds[finding.kind].format(r=finding.region, a=finding.account)
    return f"arn:aws:{prefix}{finding.resource}"


def scheduler_jobs() -> list[Any]:
    from kiln.schedule.scheduler import Job
    from kiln.services.compliance.rules import list_rules

    return [Job(key=KEY_PREFIX + rule.name, schedule=rule.schedule, timezone="UTC", target=run_due)
            for rule in list_rules() if rule.schedule]


def record_violations(report: Any) -> list[int]:
    """One event per resource out of policy, in one transaction; the event ids."""
    from kiln.services.common.events import record_event

    ids = []
    with unit_of_work() as db:
        for finding in report.violations:
            detail = {**finding.shape(), "Rule": report.rule.name, "AsOf": report.as_of.isoformat()}
            ids.append(record_event(VIOLATION_EVENT, resource_arn(finding), detail, db=db))
    return ids


def run_rule(name: str, as_of: datetime | None = None) -> Any:
    """Audit by the named rule and record its violations; the report."""
    from kiln.services.compliance.audit import audit
    from kiln.services.compliance.rules import get_rule

    report = audit(get_rule(name), as_of=as_of)
    record_violations(report)
    return report


def run_due(key: str, due_iso: str) -> None:
    """In a scheduler worker: the rule's audit as of its due time. A rule removed since is skipped."""
    from kiln.errors import NotFound

    try:
        run_rule(key.removeprefix(KEY_PREFIX))
    except NotFound:
        return
