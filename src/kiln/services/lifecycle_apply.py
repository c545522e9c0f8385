"""``kind: LifecyclePolicy`` documents in ``kiln apply``: created, or updated when changed."""

from __future__ import annotations

from typing import Any

from kiln.model.lifecycle import CreateLifecyclePolicyRequest, normalized_name
from kiln.services.apply import KindHandler, Ref, register_kind


def _apply(db: Any, request: CreateLifecyclePolicyRequest, context: Any, where: str) -> tuple[str, str]:
    from kiln.services.lifecycle_policies import put_policy

    # put_policy opens its own unit of work, which joins apply's transaction (kiln.db.engine.session).
    return put_policy(request.model_dump(mode="json", exclude_none=True))


register_kind(
    KindHandler(
        "LifecyclePolicy",
        CreateLifecyclePolicyRequest,  # type: ignore[arg-type]
        lambda request: Ref("lifecycle-policy", normalized_name(request.name)),
        lambda request: [],
        _apply,
    )
)
