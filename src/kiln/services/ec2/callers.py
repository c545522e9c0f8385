"""The caller of an EC2 action as the image store checks it: its account and, read at this moment,
its organization and OUs — so leaving an OU takes its OU grants away from the next call on (read once
per database change: any commit makes the next call read again)."""

from __future__ import annotations

from kiln.model.sharing import Principal
from kiln.services.accounts.organizations import membership
from kiln.services.common.unchanged import while_unchanged


@while_unchanged
def principal(account: str) -> Principal:
    organization_arn, ou_arns = membership(account)
    return Principal(account, organization_arn, tuple(ou_arns))
