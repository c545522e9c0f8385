"""``kiln compliance audit|remediate|rules``: is the fleet running approved, recent images, and rolling
it onto them when not (``kiln.services.compliance``)."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from kiln.cli.aws_options import DEFAULT_RATE, Backend, EndpointUrl, Profile, Rate, choose
from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, table

app = typer.Typer(no_args_is_help=True,
                  help="Fleet compliance: audit instances, groups and templates against a rule; remediate.")

AGE_HELP = "Oldest image allowed: 30d, 4w, 72h (default: the rule's)."
ASOF_HELP = "Judge as of this date (YYYY-MM-DD or ISO 8601; default: now, or $KILN_CLOCK)."
RULE_HELP = "A ComplianceRule applied with `kiln apply` (default: 'default', 30 days, no required tags)."


def _inputs(max_age: str | None, as_of: str | None, rule: str | None) -> tuple[Any, Any]:
    """The rule and the moment; bad input exits 2, so scripts tell it from "out of policy" (1)."""
    from kiln.errors import KilnError
    from kiln.services.compliance import rules

    try:
        age = rules.parse_max_age(max_age) if max_age is not None else None
        moment = rules.parse_as_of(as_of) if as_of is not None else None
        return rules.get_rule(rule, max_age=age), moment
    except KilnError as error:
        error.exit_code = 2
        raise


def _fleet(backend: str | None, region: str | None, account: str | None, profile: str | None,
           endpoint_url: str | None, rate: float) -> tuple[Any, str | None, str | None]:
    """(the fleet, the account and region filters): kiln's own, or with --backend aws (or the backend
    configured for the region) the AWS account of the credentials in --region (default: the AWS
    chain's), read and acted on through boto3."""
    from kiln.errors import KilnError

    try:
        reach = choose(backend, region, account, profile, endpoint_url)
    except KilnError as error:
        error.exit_code = 2
        raise
    if reach is None:
        return None, None, region
    from kiln.services.aws_accounts import account as aws_account
    from kiln.services.aws_accounts.compliance import AwsFleet

    target = aws_account.connect(region, reach.profile, reach.endpoint_url, rate)
    return AwsFleet(target), target.account_id, target.region


def _warn(warnings: list[str]) -> None:
    for line in warnings:
        typer.echo(f"warning: {line}", err=True)


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _days(value: int | None) -> str:
    return "-" if value is None else f"{value}d"


def _audit_text(report: Any) -> None:
    shape = report.shape()
    rule = shape["Rule"]
    tags = ", ".join(f"{k}={v}" for k, v in rule["RequiredTags"].items()) or "none"
    sys.stdout.write(f"as of {report.as_of:%Y-%m-%d %H:%M} UTC, rule {rule['Name']}: max age {rule['MaxAge']}, "
                     f"required tags {tags}; patched date = the image's build date\n")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in shape["Resources"]:
        groups.setdefault((row["AccountId"], row["Region"]), []).append(row)
    for (account, region), rows in groups.items():
        sys.stdout.write(f"\naccount {account}, region {region}\n")
        table(("TYPE", "RESOURCE", "DETAIL", "IMAGE", "AGE", "PATCHED", "APPROVED", "ALLOWED", "SCAN",
               "FIXABLE", "FIX AGE", "WATERMARKS", "STATUS", "REASON"),
              [(row["ResourceType"], row["ResourceId"], row["Detail"], row["ImageId"] or "-",
                _days(row["ImageAgeDays"]), f"{row['PatchedDate']:%Y-%m-%d}" if row["PatchedDate"] else "-",
                _yes_no(row["Approved"]), _yes_no(row["ImageAllowed"]), row["ScanState"] or "never",
                row["HighestFixableSeverity"] or "-", _days(row["OldestDaysSinceFixAvailable"]),
                ", ".join(row["Watermarks"]) or "-", "ok" if row["Compliant"] else "FAIL", "; ".join(row["Reasons"]))
               for row in rows])
    bad = len(report.violations)
    sys.stdout.write(f"\n{len(report.findings)} resources, {bad} out of policy\n" if report.findings
                     else "\nno instances, groups or launch templates in scope\n")


@app.command("audit")
def audit(
    max_age: str | None = typer.Option(None, "--max-age", help=AGE_HELP),
    as_of: str | None = typer.Option(None, "--as-of", help=ASOF_HELP),
    account: str | None = typer.Option(None, "--account", help="Only this account."),
    region: str | None = typer.Option(None, "--region", help="Only this region."),
    rule: str | None = typer.Option(None, "--rule", help=RULE_HELP),
    output: Output = "text",
    backend: Backend = None,
    profile: Profile = None,
    endpoint_url: EndpointUrl = None,
    rate: Rate = DEFAULT_RATE,
) -> None:
    """Every live instance, Auto Scaling group and launch template with its image's age, patched date,
    approval and allowed status; exit code 1 when anything is out of policy, 2 on bad input. With
    --backend aws: the AWS account's instances (running and stopped), groups and templates in --region."""
    from kiln.services.compliance import audit as audit_service

    chosen, moment = _inputs(max_age, as_of, rule)
    fleet, aws_account, region = _fleet(backend, region, account, profile, endpoint_url, rate)
    inventory = fleet.inventory() if fleet else None
    if fleet and account not in (None, aws_account):
        typer.echo(f"warning: the credentials are account {aws_account}, not {account}", err=True)
    report = audit_service.audit(chosen, as_of=moment, account=account, region=region, inventory=inventory)
    _warn(report.warnings)
    emit(output, report.shape(), lambda: _audit_text(report))
    if not report.compliant:
        raise typer.Exit(1)


def _plan_text(plan: Any, dry_run: bool) -> None:
    shape = plan.shape()
    sys.stdout.write(("would do (dry run, nothing changed):\n" if dry_run else "done:\n") if shape["Actions"]
                     else "nothing to remediate\n")
    if shape["Actions"]:
        table(("ACCOUNT", "REGION", "ACTION", "RESOURCE", "DETAIL", "STATUS"),
              [(a["AccountId"], a["Region"], a["Action"], a["ResourceId"], a["Detail"], a["Status"] or "-")
               for a in shape["Actions"]])
        for action in shape["Actions"]:
            call = action["Call"]
            sys.stdout.write(f"{call['Operation']} {json.dumps(call['Parameters'], sort_keys=True)}\n")
            if action["Error"]:
                sys.stdout.write(f"  failed: {action['Error']}\n")
    for item in shape["Unfixable"]:
        sys.stdout.write(f"cannot remediate {item['ResourceId']} ({item['AccountId']}, {item['Region']}): "
                         f"{item['Reason']}\n")


@app.command("remediate")
def remediate(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print exactly what would be done; change nothing."),
    max_age: str | None = typer.Option(None, "--max-age", help=AGE_HELP),
    as_of: str | None = typer.Option(None, "--as-of", help=ASOF_HELP),
    account: str | None = typer.Option(None, "--account", help="Only this account."),
    region: str | None = typer.Option(None, "--region", help="Only this region."),
    rule: str | None = typer.Option(None, "--rule", help=RULE_HELP),
    output: Output = "text",
    backend: Backend = None,
    profile: Profile = None,
    endpoint_url: EndpointUrl = None,
    rate: Rate = DEFAULT_RATE,
) -> None:
    """New template versions with the newest compliant image of the same pipeline (or the parameter's
    current value), default where the rule says so, and an instance refresh of each affected group;
    each action with the exact API call it makes. With --backend aws: on the AWS account in --region
    (--dry-run sends CreateLaunchTemplateVersion with DryRun and changes nothing). Exit code 1 when
    something cannot be fixed or a call failed."""
    from kiln.services.compliance import remediate as remediate_service

    chosen, moment = _inputs(max_age, as_of, rule)
    fleet, _, region = _fleet(backend, region, account, profile, endpoint_url, rate)
    plan = remediate_service.remediate(chosen, as_of=moment, account=account, region=region, dry_run=dry_run,
                                       fleet=fleet)
    _warn(plan.warnings)
    emit(output, plan.shape(), lambda: _plan_text(plan, dry_run))
    if plan.unfixable or plan.failed:
        raise typer.Exit(1)


@app.command("rules")
def list_rules(region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text") -> None:
    """The compliance rules applied with `kiln apply` (kind ComplianceRule) that cover the account in
    the region."""
    from kiln.services.compliance import rules

    shapes = [rule.shape() for rule in rules.list_rules(account=account, region=region)]
    emit(output, shapes, lambda: table(
        ("NAME", "MAX AGE", "REQUIRED TAGS", "ACCOUNTS", "REGIONS", "MIN HEALTHY", "SCHEDULE"),
        [(s["Name"], s["MaxAge"], ", ".join(f"{k}={v}" for k, v in s["RequiredTags"].items()) or "-",
          ", ".join(s["Accounts"]) or "all", ", ".join(s["Regions"]) or "all", f"{s['MinHealthyPercentage']}%",
          s["Schedule"] or "-") for s in shapes]))
