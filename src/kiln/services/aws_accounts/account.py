"""One AWS account in one region as the management commands reach it: its id, and its EC2, SSM and
Auto Scaling APIs behind one token bucket."""

from __future__ import annotations

from dataclasses import dataclass

from kiln.aws.calls import Api
from kiln.aws.session import Clients, Target
from kiln.aws.throttle import TokenBucket
from kiln.errors import InvalidInput

DEFAULT_RATE = 20.0  # calls a second; EC2's request-rate buckets refill at tens a second per action


@dataclass(frozen=True)
class Account:
    account_id: str
    region: str
    ec2: Api
    ssm: Api
    autoscaling: Api
    bucket: TokenBucket


def connect(region: str | None, profile: str | None, endpoint_url: str | None,
            rate: float = DEFAULT_RATE) -> Account:
    if not rate > 0:
        raise InvalidInput(f"--rate must be a positive number of calls a second, not {rate}", location="--rate")
    clients = Clients(Target(region, profile, endpoint_url))
    bucket = TokenBucket(rate)
    bucket.take()
    account_id = clients.account()
    return Account(
        account_id=account_id,
        region=clients.region,
        ec2=Api(clients.client("ec2"), "ec2", bucket),
        ssm=Api(clients.client("ssm"), "ssm", bucket),
        autoscaling=Api(clients.client("autoscaling"), "autoscaling", bucket),
        bucket=bucket,
    )
