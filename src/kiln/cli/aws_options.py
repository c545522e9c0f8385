"""Options of the commands that take ``--backend aws`` (the kiln store is ``local``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from kiln.errors import InvalidInput
from kiln.home import DEFAULT_REGION

Backend = Annotated[str | None, typer.Option(
    "--backend", help="local (kiln's store) or aws (a real AWS account); default: the one $KILN_HOME/backends.yaml "
                      "configures for the region (and account), else local.")]
Profile = Annotated[str | None, typer.Option("--profile", help="With --backend aws: the AWS profile.")]
EndpointUrl = Annotated[
    str | None, typer.Option("--endpoint-url", help="With --backend aws: another endpoint for every AWS service.")
]
Rate = Annotated[float, typer.Option("--rate", help="With --backend aws: at most this many AWS calls a second.")]
DEFAULT_RATE = 20.0


def aws_region(region: str) -> str | None:
    """``--region`` on the AWS side: kiln's own default region means the AWS chain's (AWS_REGION...)."""
    return None if region == DEFAULT_REGION else region


def is_aws(backend: str, profile: str | None = None, endpoint_url: str | None = None) -> bool:
    if backend not in ("local", "aws"):
        raise InvalidInput(f"--backend must be local or aws, not {backend!r}", location="--backend")
    if backend == "local" and (profile or endpoint_url):
        raise InvalidInput("--profile and --endpoint-url go with --backend aws", location="--backend")
    return backend == "aws"


@dataclass(frozen=True)
class AwsReach:
    """How a command reaches AWS: the profile and endpoint (given, or configured)."""

    profile: str | None
    endpoint_url: str | None


def choose(backend: str | None, region: str | None, account: str | None, profile: str | None = None,
           endpoint_url: str | None = None) -> AwsReach | None:
    """None for kiln's store. ``--backend`` decides when given; else the backend configured for the
    region and account (``kiln.services.aws_accounts.backends``), its profile and endpoint unless the
    command gives its own."""
    if backend is not None:
        return AwsReach(profile, endpoint_url) if is_aws(backend, profile, endpoint_url) else None
    from kiln.services.aws_accounts.backends import configured

    found = configured(region, account or None)
    if found is None or found.backend == "local":
        is_aws("local", profile, endpoint_url)
        return None
    return AwsReach(profile or found.profile, endpoint_url or found.endpoint_url)
