"""``kiln compliance audit``: every live instance, Auto Scaling group and launch template (default and
latest versions, ``resolve:ssm:`` images resolved as a launch would now) judged against a rule, as of
a moment: the image's age, its patched date, its approval (the rule's required tags) and the account's
allowed images settings, with the reasons each one fails.

Patched date: kiln records no package updates after a build, so an image is as patched as its build
— the patched date is the AMI's creation (build) date, and the report says so (``PatchedSource``).
Instances kiln runs for its own builds and tests are not part of the fleet and are left out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kiln.db.base import clock_now
from kiln.errors import InvalidInput
from kiln.services.compliance.inventory import GroupFacts, ImageFacts, Inventory, Template, load
from kiln.services.compliance.rules import Rule, describe_age
from kiln.services.ec2.allowed_criteria import judge

PATCHED_SOURCE = "build date"
INSTANCE, GROUP, TEMPLATE = "instance", "auto-scaling-group", "launch-template"
DISABLED = "disabled"


@dataclass
class Verdict:
    """One image judged for one account and region."""

    image_id: str | None
    image_name: str | None = None
    created: datetime | None = None
    age_days: int | None = None
    approved: bool | None = None
    allowed: bool | None = None  # None: allowed images settings are disabled
    reasons: list[str] = field(default_factory=list)


@dataclass
class Finding:
    account: str
    region: str
    kind: str
    resource: str
    name: str
    detail: str
    verdict: Verdict
    template_id: str | None = None
    template_version: int | None = None
    image_reference: str | None = None  # the ImageId as the template gives it (resolve:ssm:…)
    group: str | None = None  # an instance's Auto Scaling group
    arn: str | None = None  # a group's ARN
    extra_reasons: list[str] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [*self.extra_reasons, *self.verdict.reasons]

    @property
    def compliant(self) -> bool:
        return not self.extra_reasons and not self.verdict.reasons

    def shape(self) -> dict[str, Any]:
        verdict = self.verdict
        return {
            "AccountId": self.account, "Region": self.region, "ResourceType": self.kind,
            "ResourceId": self.resource, "Name": self.name, "Detail": self.detail,
            "AutoScalingGroupName": self.group if self.kind == INSTANCE else None,
            "LaunchTemplateId": self.template_id, "LaunchTemplateVersion": self.template_version,
            "ImageReference": self.image_reference, "ImageId": verdict.image_id, "ImageName": verdict.image_name,
            "ImageCreationDate": verdict.created, "ImageAgeDays": verdict.age_days,
            "PatchedDate": verdict.created, "PatchedSource": PATCHED_SOURCE if verdict.created else None,
            "Approved": verdict.approved, "ImageAllowed": verdict.allowed,
            "Compliant": self.compliant, "Reasons": self.reasons,
        }


@dataclass
class Report:
    as_of: datetime
    rule: Rule
    findings: list[Finding]
    warnings: list[str] = field(default_factory=list)

    @property
    def violations(self) -> list[Finding]:
        return [finding for finding in self.findings if not finding.compliant]

    @property
    def compliant(self) -> bool:
        return not self.violations

    def shape(self) -> dict[str, Any]:
        counts: dict[str, dict[str, int]] = {}
        for finding in self.findings:
            entry = counts.setdefault(finding.kind, {"Total": 0, "NonCompliant": 0})
            entry["Total"] += 1
            entry["NonCompliant"] += 0 if finding.compliant else 1
        return {"AsOf": self.as_of, "Rule": self.rule.shape(), "Compliant": self.compliant,
                "Summary": counts, "Resources": [finding.shape() for finding in self.findings],
                "Warnings": list(self.warnings)}


class Judge:
    """Verdicts on images, each (image, account, region) judged once."""

    def __init__(self, inventory: Inventory, rule: Rule, as_of: datetime) -> None:
        self.inventory, self.rule, self.as_of = inventory, rule, as_of
        self._cache: dict[tuple[str | None, str, str], Verdict] = {}

    def image(self, image_id: str | None, account: str, region: str) -> Verdict:
        key = (image_id, account, region)
        if key not in self._cache:
            self._cache[key] = self._judge(image_id, account, region)
        return self._cache[key]

    def _judge(self, image_id: str | None, account: str, region: str) -> Verdict:
        if not image_id:
            return Verdict(None, reasons=["no image"])
        image = self.inventory.images.get(image_id)
        if image is None:
            return Verdict(image_id, reasons=[f"image {image_id} does not exist (deregistered or never made)"])
        verdict = Verdict(image_id, image.name, image.creation_date, (self.as_of - image.creation_date).days)
        if image.state != "available":
            verdict.reasons.append(f"image is {image.state}")
        if self.as_of - image.creation_date > self.rule.max_age:
            verdict.reasons.append(f"image is {verdict.age_days} days old, more than {describe_age(self.rule.max_age)}")
        if image.deprecation_time is not None and image.deprecation_time <= self.as_of:
            verdict.reasons.append(f"image deprecated since {image.deprecation_time:%Y-%m-%d}")
        if self.rule.required_tags:
            missing = [f"{key}={value}" for key, value in self.rule.required_tags.items()
                       if image.tags.get(key) != value]
            verdict.approved = not missing
            if missing:
                verdict.reasons.append(f"not approved: tag {', '.join(missing)} missing")
        verdict.allowed, why = self._allowed(image, account, region)
        if verdict.allowed is False:
            verdict.reasons.append(f"not allowed by the allowed images settings ({why})")
        return verdict

    def _allowed(self, image: ImageFacts, account: str, region: str) -> tuple[bool | None, str]:
        state, criteria, own = self.inventory.allowed.get((account, region), (DISABLED, [], False))
        if state == DISABLED:
            return None, "allowed images settings are disabled"
        if image.owner_id == account and not own:
            return True, "the account's own AMI"
        return judge(criteria, image, account, self.as_of)


def _version_label(template: Template, number: int) -> str:
    aliases = [alias for alias, value in (("$Default", template.default_version),
                                          ("$Latest", template.latest_version)) if value == number]
    return f"v{number}" + (f" ({', '.join(aliases)})" if aliases else "")


def _template_version(judge_: Judge, template: Template, number: int, kind: str, resource: str, name: str,
                      detail: str) -> Finding:
    given = template.versions.get(number)
    ami, why = judge_.inventory.resolve(given, template.account, template.region) if given else (None, None)
    finding = Finding(template.account, template.region, kind, resource, name, detail,
                      judge_.image(ami, template.account, template.region) if why is None else Verdict(None),
                      template.id, number, given if given and given != ami else None)
    if why is not None:
        finding.extra_reasons.append(why)
    return finding


def _templates(judge_: Judge, templates: list[Template]) -> list[Finding]:
    found = []
    for template in templates:
        for number in sorted({template.default_version, template.latest_version} - {None}):
            found.append(_template_version(judge_, template, number, TEMPLATE, template.id, template.name,
                                           _version_label(template, number)))
    return found


def _group_version(wanted: str, template: Template) -> int | None:
    if wanted == "$Default":
        return template.default_version
    if wanted == "$Latest":
        return template.latest_version
    return int(wanted) if str(wanted).isdigit() else None


def _group_finding(group: GroupFacts, detail: str, template_id: str | None = None, number: int | None = None,
                   why: str | None = None) -> Finding:
    finding = Finding(group.account_id, group.region, GROUP, group.name, group.name, detail, Verdict(None),
                      template_id, number, arn=group.arn)
    if why:
        finding.extra_reasons.append(why)
    return finding


def _group_template(judge_: Judge, group: GroupFacts, template_id: str, version: str,
                    templates: dict[str, Template], label: str = "") -> Finding:
    template = templates.get(template_id)
    if template is None:
        return _group_finding(group, f"{label}{template_id} {version}", template_id,
                              why=f"launch template {template_id} does not exist")
    number = _group_version(version, template)
    detail = f"{label}{template.id} {version}" + (f" = v{number}" if number else "")
    if number is None or number not in template.versions:
        return _group_finding(group, detail, template.id, number,
                              why=f"launch template {template.id} has no version {version}")
    finding = _template_version(judge_, template, number, GROUP, group.name, group.name, detail)
    finding.arn = group.arn
    return finding


def _groups(judge_: Judge, groups: list[GroupFacts], templates: dict[str, Template]) -> list[Finding]:
    """One finding per launch source of each group: its launch template version (a mixed instances
    policy's, then each override's own template) or its launch configuration."""
    found = []
    for group in groups:
        if group.launch_configuration:
            detail = f"launch configuration {group.launch_configuration}"
            finding = _group_finding(group, detail)
            finding.verdict = judge_.image(group.launch_configuration_image, group.account_id, group.region)
            found.append(finding)
        elif group.template_id:
            found.append(_group_template(judge_, group, group.template_id, group.template_version or "$Default",
                                         templates))
        else:
            found.append(_group_finding(group, "-", why="no launch template or launch configuration"))
        for template_id, version in group.overrides:
            found.append(_group_template(judge_, group, template_id, version, templates, "override "))
    return found


def _instances(judge_: Judge, instances: list[Any]) -> list[Finding]:
    found = []
    for row in instances:
        found.append(Finding(row.account_id, row.region, INSTANCE, row.id, row.name or "",
                             row.state + (f", group {row.group}" if row.group else ""),
                             judge_.image(row.image_id, row.account_id, row.region), group=row.group))
    return found


_KIND_ORDER = {INSTANCE: 2, GROUP: 0, TEMPLATE: 1}


def _order(finding: Finding) -> tuple[str, str, int, str, int]:
    return (finding.account, finding.region, _KIND_ORDER[finding.kind], finding.resource,
            finding.template_version or 0)


def audit(rule: Rule, *, as_of: datetime | None = None, account: str | None = None,
          region: str | None = None, inventory: Inventory | None = None) -> Report:
    """The report of every resource in the rule's scope (and ``account``/``region``, when given)."""
    moment = as_of or clock_now()
    if moment.tzinfo is None:
        raise InvalidInput("the audit time needs a timezone", location="--as-of")
    inventory = inventory or load()

    def wanted(acc: str, reg: str) -> bool:
        return rule.covers(acc, reg) and account in (None, acc) and region in (None, reg)

    judge_ = Judge(inventory, rule, moment)
    findings = [
        *_instances(judge_, [row for row in inventory.instances if wanted(row.account_id, row.region)]),
        *_groups(judge_, [row for row in inventory.groups if wanted(row.account_id, row.region)],
                 inventory.templates),
        *_templates(judge_, [t for t in inventory.templates.values() if wanted(t.account, t.region)]),
    ]
    findings.sort(key=_order)
    return Report(moment, rule, findings, list(inventory.warnings))
