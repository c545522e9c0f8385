"""Organizations' ``ListAccounts`` as the API answers it: the accounts of the caller's organization,
for its management account only (``services/accounts`` lists every kiln account)."""

from __future__ import annotations

from typing import Any

from kiln.services.accounts.accounts import list_accounts as every_account
from kiln.services.accounts.organizations import OrganizationsError, describe_organization


def list_accounts(caller: str) -> dict[str, Any]:
    organization = describe_organization(caller)["Organization"]
    if organization["MasterAccountId"] != caller:
        raise OrganizationsError("AccessDeniedException",
                                 f"account {caller} is not the management account of {organization['Id']}")
    prefix = organization["MasterAccountArn"].rsplit("/", 1)[0] + "/"
    return {"Accounts": [account for account in every_account() if account.get("Arn", "").startswith(prefix)]}
