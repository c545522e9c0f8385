"""Organization and organizational-unit ARNs: the one pattern of each that kiln checks.

The patterns are botocore ``imagebuilder``'s ``OrganizationArn`` / ``OrganizationalUnitArn`` (a test
holds them equal; loading the model at import would cost every command ~0.2 s). The OU pattern is
anchored at its end too: botocore's is not, which would let trailing text through.
"""

from __future__ import annotations

import re

ORGANIZATION_ARN_PATTERN = r"^arn:aws[^:]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$"
OU_ARN_PATTERN = r"^arn:aws[^:]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}$"

ORGANIZATION_ARN = re.compile(ORGANIZATION_ARN_PATTERN)
OU_ARN = re.compile(OU_ARN_PATTERN)

ORGANIZATION_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
ROOT_ID = re.compile(r"^r-[0-9a-z]{4,32}$")
OU_ID = re.compile(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def _random(length: int, alphabet: str = _ALPHABET) -> str:
    import secrets

    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_organization_id() -> str:
    return f"o-{_random(10)}"


def new_root_id() -> str:
    return f"r-{_random(4)}"


def new_ou_id(root_id: str) -> str:
    """An OU id carries its root's suffix, as AWS's do: ``ou-<root>-<8>``."""
    return f"ou-{root_id.removeprefix('r-')}-{_random(8)}"


def organization_arn(management: str, organization_id: str) -> str:
    return f"arn:aws:organizations::{management}:organization/{organization_id}"


def root_arn(management: str, organization_id: str, root_id: str) -> str:
    return f"arn:aws:organizations::{management}:root/{organization_id}/{root_id}"


def ou_arn(management: str, organization_id: str, ou_id: str) -> str:
    return f"arn:aws:organizations::{management}:ou/{organization_id}/{ou_id}"


def account_arn(management: str, organization_id: str, account_id: str) -> str:
    return f"arn:aws:organizations::{management}:account/{organization_id}/{account_id}"
