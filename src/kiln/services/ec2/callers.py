"""The caller of an EC2 action as the image store checks it: its account and, read at this moment,
its organization and OUs — so leaving an OU takes its OU grants away from the next call on."""

from __future__ import annotations

from kiln.model.sharing import Principal
from kiln.services.accounts.organizations import membership


def principal(account: str) -> Principal:
    organization_arn, ou_arns = membership(account)
    return Principal(account, organization_arn, tuple(ou_arns))
