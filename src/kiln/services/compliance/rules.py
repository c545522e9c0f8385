"""Compliance rules: how old an image the fleet may run, which tags approve it, where the rule
applies, how remediation rolls groups (MinHealthyPercentage, new default version) and when the
scheduler audits (an AWS cron expression). ``kiln apply`` writes them as kind ``ComplianceRule``;
``default`` (30 days, no tags, everywhere) is what an audit uses without ``--rule``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import select

from kiln.db.base import utcnow
from kiln.db.tables.compliance import ComplianceRuleRow
from kiln.errors import InvalidInput, KilnError, NotFound
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.shapes import AccountId, ResourceName, Shape
from kiln.services.common.kinds import KindHandler, Ref, no_references
from kiln.services.common.unit import unit_of_work
from kiln.services.ec2.allowed_criteria import check_scan_condition

DEFAULT_RULE = "default"
DEFAULT_MAX_AGE_DAYS = 30
DEFAULT_MIN_HEALTHY = 90
_AGE = re.compile(r"^(\d+)([hdw]?)$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks", "": "days"}


class ComplianceRuleRequest(Shape):
    """The ``ComplianceRule`` document of ``kiln apply``."""

    name: ResourceName
    description: Annotated[str, Field(max_length=1024)] | None = None
    maxAgeDays: Annotated[int, Field(ge=1, le=36500)] = DEFAULT_MAX_AGE_DAYS
    requiredTags: dict[Annotated[str, Field(min_length=1, max_length=128)],
                       Annotated[str, Field(max_length=256)]] | None = None
    accounts: list[AccountId] | None = None
    regions: list[Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")]] | None = None
    minHealthyPercentage: Annotated[int, Field(ge=0, le=100)] = DEFAULT_MIN_HEALTHY
    setDefaultVersion: bool = True
    schedule: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    # fails an image whose latest scan does not meet it (members of EC2's ScanResultCondition)
    scanCondition: dict[str, Any] | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    max_age: timedelta
    required_tags: dict[str, str] = field(default_factory=dict)
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    min_healthy_percentage: int = DEFAULT_MIN_HEALTHY
    set_default_version: bool = True
    schedule: str | None = None
    scan_condition: dict[str, Any] | None = None

    def covers(self, account: str, region: str) -> bool:
        return (not self.accounts or account in self.accounts) and (not self.regions or region in self.regions)

    def shape(self) -> dict[str, Any]:
        return {"Name": self.name, "MaxAge": describe_age(self.max_age), "RequiredTags": self.required_tags,
                "Accounts": list(self.accounts), "Regions": list(self.regions),
                "MinHealthyPercentage": self.min_healthy_percentage, "SetDefaultVersion": self.set_default_version,
                "Schedule": self.schedule, "ScanCondition": self.scan_condition}


DEFAULT = Rule(DEFAULT_RULE, timedelta(days=DEFAULT_MAX_AGE_DAYS))


def parse_max_age(text: str, where: str = "--max-age") -> timedelta:
    """``30d``, ``4w``, ``12h`` or a bare number of days."""
    match = _AGE.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise InvalidInput(f"{text!r} is not an age", location=where, hint="e.g. 30d, 4w, 72h or 30 (days)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def describe_age(age: timedelta) -> str:
    if age % timedelta(days=1):
        return f"{int(age.total_seconds() // 3600)}h"
    return f"{age.days}d"


def parse_as_of(text: str, where: str = "--as-of") -> datetime:
    """A date (midnight UTC) or an ISO 8601 time; naive times are UTC."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date", location=where,
                           hint="give YYYY-MM-DD or an ISO 8601 time like 2027-01-31T12:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_schedule(expression: str, where: str = "schedule") -> str:
    from kiln.schedule import cron

    text = expression.strip()
    if not (text.startswith("cron(") and text.endswith(")")):
        raise InvalidInput(f"{expression!r} is not an AWS cron expression", location=where,
                           hint="cron(minutes hours day-of-month month day-of-week year), e.g. cron(0 6 * * ? *)")
    try:
        cron.parse(text)
    except KilnError as error:
        raise InvalidInput(error.message, location=where, hint=error.hint) from None
    return text


def _from_row(row: ComplianceRuleRow) -> Rule:
    return Rule(row.name, timedelta(days=row.max_age_days), dict(row.required_tags), tuple(row.accounts),
                tuple(row.regions), row.min_healthy_percentage, row.set_default_version, row.schedule,
                (row.rule or {}).get("scanCondition"))


def get_rule(name: str | None, *, max_age: timedelta | None = None) -> Rule:
    """The named rule (``default`` unless one was applied under that name), its max age overridden."""
    rule = DEFAULT
    if name is not None:
        with unit_of_work() as db:
            row = db.get(ComplianceRuleRow, name)
            if row is not None:
                rule = _from_row(row)
            elif name != DEFAULT_RULE:
                known = ", ".join(db.scalars(select(ComplianceRuleRow.name).order_by(ComplianceRuleRow.name)))
                raise NotFound(f"no compliance rule named {name!r}", location="--rule",
                               hint=f"known rules: {known or 'none (apply a ComplianceRule)'}; "
                                    f"'{DEFAULT_RULE}' is always there")
    return rule if max_age is None else replace(rule, max_age=max_age)


def list_rules(*, account: str | None = None, region: str | None = None) -> list[Rule]:
    """The rules, only those covering ``account`` in ``region`` when given."""
    with unit_of_work() as db:
        found = [_from_row(row) for row in db.scalars(select(ComplianceRuleRow).order_by(ComplianceRuleRow.name))]
    return [
        rule for rule in found
        if (account is None or not rule.accounts or account in rule.accounts)
        and (region is None or not rule.regions or region in rule.regions)
    ]


def put_rule(db: Any, request: ComplianceRuleRequest) -> str:
    """Create or update; ``created``, ``updated`` or ``unchanged``."""
    body = request.dump()
    schedule = check_schedule(request.schedule) if request.schedule else None
    if request.scanCondition is not None:
        check_scan_condition(request.scanCondition, "scanCondition")
    values = {"description": request.description, "max_age_days": request.maxAgeDays,
              "required_tags": dict(request.requiredTags or {}), "accounts": sorted(set(request.accounts or [])),
              "regions": sorted(set(request.regions or [])), "min_healthy_percentage": request.minHealthyPercentage,
              "set_default_version": request.setDefaultVersion, "schedule": schedule, "rule": body}
    row = db.get(ComplianceRuleRow, request.name)
    now = utcnow()
    if row is None:
        db.add(ComplianceRuleRow(name=request.name, created_at=now, updated_at=now, **values))
        return "created"
    if all(getattr(row, key) == value for key, value in values.items()):
        return "unchanged"
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = now
    return "updated"


def rule_arn(name: str, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> str:
    return f"arn:aws:kiln:{region}:{account}:compliance-rule/{name}"


def _apply(db: Any, request: ComplianceRuleRequest, context: Any, where: str) -> tuple[str, str]:
    try:
        status = put_rule(db, request)
    except KilnError as error:
        error.location = f"{where}: {error.location}" if error.location else where
        raise
    return rule_arn(request.name, context.account, context.region), status


APPLY_KIND = KindHandler(
    "ComplianceRule",
    ComplianceRuleRequest,
    lambda request: Ref("compliance-rule", request.name),
    no_references,
    _apply,
)
