"""Who may see and launch an AMI: launch permissions evaluated for a caller, as EC2 does.

A ``Principal`` is the calling account together with where it sits in an organization *now* (its
organization's ARN, and the ARNs of its own OU and every OU above it). The services build it at each
call from live membership, so moving an account out of an OU changes what it may launch at once.

* The owner may always launch and see its AMI; its own id is never listed as a grant.
* ``Group: all`` makes an AMI public. ``UserId`` grants one account. ``OrganizationArn`` grants every
  member of the organization, ``OrganizationalUnitArn`` every account in that OU or an OU below it.
* Grantees see only the ``ec2:SharedTag/`` tags, never the owner's other tags.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kiln.ec2_errors import InvalidUserIDMalformed
from kiln.model.organizations import ACCOUNT_ID

Permission = Mapping[str, str]

PUBLIC: dict[str, str] = {"Group": "all"}
SHARED_TAG_PREFIX = "ec2:SharedTag/"
# DescribeImages ``Owners`` aliases (``ImageOwnerAlias``); an account carries one at most.
OWNER_ALIASES = ("amazon", "aws-marketplace", "aws-backup-vault")


@dataclass(frozen=True)
class Principal:
    """The caller: its account, and its organization and OUs (own OU first, then its ancestors)."""

    account: str
    organization_arn: str | None = None
    ou_arns: tuple[str, ...] = ()

    def granted(self, permissions: Iterable[Permission]) -> bool:
        """Shared with this account by a grant (its id, its organization, its OU or one above it);
        public and ownership do not count."""
        for entry in permissions:
            if entry.get("UserId") == self.account:
                return True
            if self.organization_arn and entry.get("OrganizationArn") == self.organization_arn:
                return True
            if entry.get("OrganizationalUnitArn") in self.ou_arns:
                return True
        return False

    def may_launch(self, owner: str, permissions: Iterable[Permission]) -> bool:
        permissions = list(permissions)
        return owner == self.account or is_public(permissions) or self.granted(permissions)


def is_public(permissions: Iterable[Permission]) -> bool:
    return any(dict(entry) == PUBLIC for entry in permissions)


def shared_with_account(permissions: Iterable[Permission], account: str) -> bool:
    """An explicit ``UserId`` grant (DescribeImages ``ExecutableUsers`` naming another account)."""
    return any(entry.get("UserId") == account for entry in permissions)


def visible_tags(tags: Mapping[str, str], owner: str, account: str | None) -> dict[str, str]:
    """The tags ``account`` sees on a resource of ``owner``: all of them for the owner (or a call
    without a caller), else only the ``ec2:SharedTag/`` ones."""
    if account is None or account == owner:
        return dict(tags)
    return {key: value for key, value in tags.items() if key.startswith(SHARED_TAG_PREFIX)}


@dataclass(frozen=True)
class OwnerScope:
    """DescribeImages ``Owners``: account ids (``self`` resolved) and aliases, OR-ed."""

    accounts: frozenset[str]
    aliases: frozenset[str]

    @classmethod
    def parse(cls, values: Iterable[str], caller: str) -> OwnerScope:
        accounts, aliases = set(), set()
        for value in values:
            if value == "self":
                accounts.add(caller)
            elif value in OWNER_ALIASES:
                aliases.add(value)
            elif ACCOUNT_ID.fullmatch(value):
                accounts.add(value)
            else:
                raise InvalidUserIDMalformed(
                    f"Invalid user id: \"{value}\"", location="Owners",
                    hint="an owner is an account id, self, " + ", ".join(OWNER_ALIASES),
                )
        return cls(frozenset(accounts), frozenset(aliases))

    def matches(self, owner: str, alias: str | None) -> bool:
        return owner in self.accounts or (alias is not None and alias in self.aliases)


@dataclass(frozen=True)
class ExecutableScope:
    """DescribeImages ``ExecutableUsers``, OR-ed: ``self`` (or the caller's id) — shared with the
    caller, org and OU grants included; another account's id — explicit grants to it only; ``all``
    — public AMIs."""

    caller: bool
    accounts: frozenset[str]
    public: bool

    @classmethod
    def parse(cls, values: Iterable[str], caller: str) -> ExecutableScope:
        me, accounts, public = False, set(), False
        for value in values:
            if value in ("self", caller):
                me = True
            elif value == "all":
                public = True
            elif ACCOUNT_ID.fullmatch(value):
                accounts.add(value)
            else:
                raise InvalidUserIDMalformed(
                    f"Invalid user id: \"{value}\"", location="ExecutableUsers",
                    hint="an executable user is an account id, self or all",
                )
        return cls(me, frozenset(accounts), public)

    def matches(self, permissions: Iterable[Permission], principal: Principal) -> bool:
        permissions = list(permissions)
        return (
            (self.caller and principal.granted(permissions))
            or (self.public and is_public(permissions))
            or any(shared_with_account(permissions, account) for account in self.accounts)
        )
