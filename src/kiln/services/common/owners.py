"""Which account a Get/Update/Delete by ARN may see: the caller's own resources only.

Image Builder answers another account's ARN as it answers one that does not exist —
ResourceNotFoundException naming the ARN and never its owner — and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from kiln.errors import NotFound
from kiln.model.arn import Arn


def as_caller(text: str, parsed: Arn, caller: str | None, region: str | None = None) -> Arn:
    """``parsed`` as the caller means it: a short form (``image-recipe/NAME/…``) names the caller's
    own resource (in ``region``, when given); a full ARN names its own account and region."""
    if str(text).strip().startswith("arn:"):
        return parsed
    if caller is not None:
        parsed = replace(parsed, account=caller)
    return replace(parsed, region=region) if region is not None else parsed


def in_region(arn: str, region: str | None) -> bool:
    """Whether the resource ``arn`` names lives in ``region`` (``None``: any region). List calls are
    regional, as on AWS: a region's list shows only what was made there."""
    return region is None or arn.split(":")[3] == region


def visible(owner: str, caller: str | None, readable: Iterable[str] = ()) -> bool:
    """Whether ``caller`` may see a resource of ``owner``: its own, or one ``readable`` by all
    (no ``caller``: kiln itself, which sees everything)."""
    return caller is None or owner == caller or owner in readable


def require_visible(
    owner: str, caller: str | None, what: str, arn: str, location: str, *, readable: Iterable[str] = (),
    hint: str | None = None,
) -> None:
    """NotFound unless the resource owned by ``owner`` is the caller's (or its owner's resources are
    ``readable`` by all, e.g. Amazon-managed components). No ``caller`` means no check (kiln inside).
    Message and ``hint`` must be the ones a missing resource gets, so the answers cannot be told apart."""
    if not visible(owner, caller, readable):
        raise NotFound(f"{what} {arn} does not exist", location=location, hint=hint)
