"""boto3 sessions and clients from the normal AWS chain (environment, profile, instance role), for
one region and optionally another endpoint (moto in tests, a VPC endpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from kiln.aws.errors import as_kiln_error
from kiln.errors import InvalidInput


@dataclass(frozen=True)
class Target:
    region: str | None  # None: the chain's (AWS_REGION, AWS_DEFAULT_REGION, the profile's region)
    profile: str | None = None
    endpoint_url: str | None = None


@cache
def known_regions() -> frozenset[str]:
    """Every region botocore's endpoint data names for EBS direct APIs, in every partition."""
    import boto3

    session = boto3.session.Session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ebs", partition_name=partition)
    )


def check_region(region: str) -> None:
    if region not in known_regions():
        raise InvalidInput(f"{region!r} is not an AWS region with the EBS direct APIs", location="--region")


class Clients:
    """The clients one publish uses, sharing one session; thread-safe once made."""

    def __init__(self, target: Target, *, pool: int = 10) -> None:
        import boto3
        from botocore.config import Config

        try:
            self.session = boto3.session.Session(profile_name=target.profile, region_name=target.region)
        except Exception as error:
            raise as_kiln_error(error, "session") from None
        region = self.session.region_name
        if not region:
            raise InvalidInput("no AWS region given (--region, AWS_REGION, or the profile's region)",
                               location="--region")
        check_region(region)
        self.region = region
        self.target = target
        # kiln retries itself (kiln.aws.retry): one attempt per botocore call
        self.config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=pool,
                             connect_timeout=10, read_timeout=60)

    def client(self, service: str) -> Any:
        try:
            return self.session.client(service, region_name=self.region,
                                       endpoint_url=self.target.endpoint_url, config=self.config)
        except Exception as error:
            raise as_kiln_error(error, f"{service} client") from None

    def account(self) -> str:
        """The account the credentials belong to (STS GetCallerIdentity): checks them, too."""
        try:
            return str(self.client("sts").get_caller_identity()["Account"])
        except Exception as error:
            raise as_kiln_error(error, "sts GetCallerIdentity") from None
