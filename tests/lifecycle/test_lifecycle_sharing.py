"""Lifecycle's AMI exclusions ``isPublic`` and ``sharedAccounts`` read the AMI's real launch permissions:
an account reached through an organization or OU grant counts as shared with, by its membership now."""

from __future__ import annotations

from pathlib import Path

from lifecycle_fakes import AS_OF, image, policy, rule

from kiln.home import DEFAULT_ACCOUNT
from kiln.services.accounts import accounts, organizations
from kiln.services.ec2 import images
from kiln.services.lifecycle.candidates import _ami_candidate
from kiln.services.lifecycle.rules import evaluate

PEER = "210987654321"
OTHER = "310987654321"


def _candidate(ami: str):  # type: ignore[no-untyped-def]
    known = [account["Id"] for account in accounts.list_accounts()]
    candidate = _ami_candidate({"image": ami, "region": "local"}, {}, {}, known)
    assert candidate is not None
    return candidate


def _exclusion(ami: str, amis: dict[str, object]) -> str | None:
    """Why a DELETE rule with these AMI exclusions keeps the real AMI (None: it would go)."""
    target = image(1, days_old=90, amis=[_candidate(ami)])
    plan = evaluate(policy(rule("DELETE", "AGE", 30, "DAYS", exclusions={"amis": amis})), [target], as_of=AS_OF)
    [decision] = [d for d, _ in plan.decisions() if d.resource_id == ami]
    return decision.reason if decision.action == "none" else None


def test_shared_accounts_and_public_come_from_live_grants(busybox_dir: Path) -> None:
    for name, number in (("peer", PEER), ("other", OTHER)):
        accounts.create_account(name, account_id=number)
    ami = images.import_image(busybox_dir, name="lifecycle-shared")["ImageId"]
    organizations.create_organization(DEFAULT_ACCOUNT)
    root = organizations.list_roots(DEFAULT_ACCOUNT)["Roots"][0]["Id"]
    unit = organizations.create_organizational_unit(DEFAULT_ACCOUNT, root, "prod")["OrganizationalUnit"]
    organizations.add_account(DEFAULT_ACCOUNT, PEER)
    organizations.move_account(DEFAULT_ACCOUNT, PEER, unit["Id"])

    images.modify_launch_permission(ami, add=[{"OrganizationalUnitArn": unit["Arn"]}, {"UserId": OTHER}])
    assert _candidate(ami).shared_accounts == (PEER, OTHER)
    assert _exclusion(ami, {"sharedAccounts": [PEER]}) == f"excluded: shared with account {PEER}"
    organizations.move_account(DEFAULT_ACCOUNT, PEER, root)  # out of the OU: not shared with it any more
    assert _candidate(ami).shared_accounts == (OTHER,)
    assert _exclusion(ami, {"sharedAccounts": [PEER]}) is None

    assert _exclusion(ami, {"isPublic": True}) is None
    images.modify_launch_permission(ami, add=[{"Group": "all"}])
    assert _exclusion(ami, {"isPublic": True}) == "excluded: AMI is public"
    images.reset_image_attribute(ami)
    assert _candidate(ami).shared_accounts == () and not _candidate(ami).public
