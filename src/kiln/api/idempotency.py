"""Idempotency tokens on the wire: the member of an operation that the botocore model marks
``idempotencyToken`` (Image Builder's ``clientToken``, EC2's ``ClientToken``) makes the call once per
token and caller (``services.common.client_tokens``); the fingerprint is every other member but DryRun."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import cache
from typing import Any

from kiln.api.model import operation
from kiln.api.sigv4 import Caller
from kiln.services.common.client_tokens import TokenKey, idempotent

NOT_FINGERPRINTED = ("DryRun", "dryRun")


@cache
def token_member(service: str, name: str) -> str | None:
    shape = operation(service, name).input_shape
    if shape is None:
        return None
    return next((member for member, s in shape.members.items() if s.metadata.get("idempotencyToken")), None)


def fingerprint(params: dict[str, Any], token: str) -> str:
    rest = {k: v for k, v in params.items() if k != token and k not in NOT_FINGERPRINTED and v is not None}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()


def call(service: str, name: str, params: dict[str, Any], caller: Caller,
         run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run()``, or the answer of the earlier request with the same token."""
    member = token_member(service, name)
    token = params.get(member) if member else None
    if not token or params.get("DryRun") or params.get("dryRun"):
        return run()
    key = TokenKey(caller.account_id, caller.region, service, str(token))
    return idempotent(key, name, fingerprint(params, member), run)  # type: ignore[arg-type]
