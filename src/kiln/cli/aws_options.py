"""Options of the commands that take ``--backend aws`` (the kiln store is ``local``)."""

from __future__ import annotations

from typing import Annotated

import typer

from kiln.errors import InvalidInput
from kiln.home import DEFAULT_REGION

Backend = Annotated[str, typer.Option("--backend", help="local (kiln's store) or aws (a real AWS account).")]
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
