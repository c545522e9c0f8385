"""Running a lifecycle policy: evaluate, record every resource step, act through ``Actions``.

Guarantees:

* **One run per policy.** A database lease ``lifecycle:<arn>`` is taken first. While another live
  process holds it, a second run is refused with :class:`Conflict` (as Image Builder: an execution
  in progress continues, no second one starts). A lease whose holder process on this host is gone,
  or whose time ran out, is taken over.
* **Every step recorded.** The plan's steps are written as execution-resource rows (``IN_PROGRESS``
  = pending) in one transaction before anything is done; each step then commits its own result
  (``SUCCESS``/``FAILED``/``SKIPPED``) in its own transaction. Per image, AMIs go first, each AMI's
  snapshots right after it, and the image record last, so an image is never marked deleted while
  its AMIs or snapshots remain.
* **Cancel.** ``cancel_execution`` marks an execution ``CANCELLING``; the run notices before its
  next step, skips the rest ("execution cancelled before this step") and ends ``CANCELLED``.
  Nothing already done is rolled back (as Image Builder). A run that died while cancelling is
  closed ``CANCELLED`` by the next run, without acting.
* **Resume.** A run first finishes the pending steps of any unfinished execution of the policy
  (a run that was killed), re-checking against fresh candidates that an AMI is still not in use
  or protected, then closes that execution (``SUCCESS``, or ``FAILED`` if a step failed) with
  the reason "interrupted; completed by <new execution>". Then it evaluates afresh. Done steps are
  never repeated; the one step in flight when a run died is repeated, so ``Actions`` must be
  idempotent (acting on a resource already in the wanted state succeeds), as EC2 and Image
  Builder are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from kiln.db.base import utcnow
from kiln.errors import Conflict, InvalidRequest
from kiln.model.lifecycle import (
    ExecutionStatus,
    LifecycleExecution,
    LifecyclePolicy,
    PolicyStatus,
    new_execution_id,
)
from kiln.services.lifecycle.rules import AmiCandidate, ImageCandidate, Plan, evaluate

LEASE_TTL = timedelta(minutes=5)


class Actions(Protocol):
    """What a run does to the world. Every method must succeed when the resource is already there."""

    def deprecate_ami(self, region: str, image_id: str, at: datetime) -> None: ...
    def disable_ami(self, region: str, image_id: str) -> None: ...
    def deregister_ami(self, region: str, image_id: str) -> None:
        """Deregister only; snapshots stay (as on EC2) and are deleted as their own recorded steps."""

    def delete_snapshot(self, region: str, snapshot_id: str) -> None: ...
    def set_image_status(self, arn: str, status: str) -> None:
        """Set the Image Builder image's status to DEPRECATED or DISABLED."""

    def mark_image_deleted(self, arn: str) -> None: ...


class CandidateSource(Protocol):
    """Gathers the images (with their AMIs and snapshots) a policy may act on."""

    def gather(self, policy: LifecyclePolicy) -> list[ImageCandidate]: ...


_sources: list[CandidateSource] = []
_actions: list[Actions] = []


def register_source(source: CandidateSource | None) -> None:
    """Install the candidate source (the integrator plugs in the image store's); None removes it."""
    _sources.clear()
    if source is not None:
        _sources.append(source)


def register_actions(actions: Actions | None) -> None:
    _actions.clear()
    if actions is not None:
        _actions.append(actions)


def candidate_source() -> CandidateSource:
    """The registered source, else kiln's own: image records, the image store and the runtime."""
    if not _sources:
        from kiln.services.lifecycle.candidates import StoreCandidateSource

        return StoreCandidateSource()
    return _sources[0]


def registered_actions() -> Actions:
    """The registered actions, else the image store's EC2 calls."""
    if not _actions:
        from kiln.services.lifecycle.candidates import StoreActions

        return StoreActions()
    return _actions[0]


def preview(
    policy_arn: str, *, as_of: datetime, source: CandidateSource | None = None
) -> tuple[LifecyclePolicy, Plan]:
    from kiln.services.lifecycle.policies import get_policy

    policy = get_policy(policy_arn)
    gathered = (source or candidate_source()).gather(policy)
    return policy, evaluate(policy, gathered, as_of=as_of)


# ---------------------------------------------------------------------------------------------- lease


def _acquire_lease(name: str, holder: str, ttl: timedelta = LEASE_TTL) -> None:
    """Take (or renew) the named lease; Conflict while another live holder has it."""
    from kiln.schedule import leases
    from kiln.services.lifecycle.policies import where

    if not leases.acquire(name, holder, ttl.total_seconds()):
        arn = name.removeprefix("lifecycle:")
        raise Conflict(
            f"lifecycle policy {arn} {where(arn)}: lease {name} is held by "
            f"{leases.holder_of(name) or 'another process'}",
            hint="another run of this lifecycle policy is in progress; it continues, this one stops",
        )


# ------------------------------------------------------------------------------------------------ run


def run(
    policy_arn: str, *, as_of: datetime, source: CandidateSource | None = None, actions: Actions | None = None
) -> LifecycleExecution:
    """Run the policy once: finish an interrupted execution, then evaluate and act. Returns the execution."""
    from kiln.schedule import leases
    from kiln.services.lifecycle.policies import get_execution, get_policy, mark_last_run, scope, where

    policy = get_policy(policy_arn)
    if policy.status is not PolicyStatus.ENABLED:
        raise InvalidRequest(
            f"lifecycle policy {policy.arn} {where(policy.arn)} is DISABLED",
            hint="enable it with kiln lifecycle update",
        )
    owner = scope(policy.arn)[0]
    source = source or candidate_source()
    actions = actions or registered_actions()
    lease, holder = f"lifecycle:{policy.arn}", leases.new_holder()
    _acquire_lease(lease, holder)
    try:
        renew = lambda: _acquire_lease(lease, holder)  # noqa: E731
        execution_id = new_execution_id()
        candidates = source.gather(policy)
        for stale in _unfinished(policy.arn):
            _finish(stale, actions, _fresh_index(candidates), renew, owner)
            _close(stale, reason=f"interrupted; completed by {execution_id}")
        candidates = source.gather(policy)
        plan = evaluate(policy, candidates, as_of=as_of)
        _record(execution_id, policy, as_of, plan)
        _finish(execution_id, actions, None, renew, owner)
        _close(execution_id, reason=None)
        mark_last_run(policy.arn, utcnow())
        return get_execution(execution_id)
    finally:
        leases.release(lease, holder)


def _fresh_index(candidates: list[ImageCandidate]) -> dict[str, AmiCandidate]:
    return {ami.image_id: ami for image in candidates for ami in image.amis}


def _unfinished(policy_arn: str) -> list[str]:
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.lifecycle import LifecycleExecutionRow as E

    with session() as db:
        return list(
            db.scalars(
                select(E.id)
                .where(
                    E.policy_arn == policy_arn,
                    E.status.in_([ExecutionStatus.IN_PROGRESS.value, ExecutionStatus.CANCELLING.value]),
                )
                .order_by(E.start_time, E.id)
            )
        )


def _record(execution_id: str, policy: LifecyclePolicy, as_of: datetime, plan: Plan) -> None:
    """Write the execution and every step of the plan (pending, or SKIPPED with the reason) at once."""
    from kiln.db.engine import session
    from kiln.db.tables.lifecycle import LifecycleExecutionResourceRow as R
    from kiln.db.tables.lifecycle import LifecycleExecutionRow as E

    names = {i: d.action.type.value for i, d in enumerate(policy.policyDetails)}
    rows: list[dict[str, Any]] = []
    for image in plan.images:
        touched = image.decision.action != "none" or image.decision.reason.startswith("kept")
        if not touched:
            continue
        for ami in image.amis:
            rows.append(_row(ami.decision, image.decision.resource_id, names))
            rows.extend(_row(snap, ami.decision.resource_id, names) for snap in ami.snapshots)
        rows.append(_row(image.decision, None, names))
    with session() as db:
        db.add(
            E(
                id=execution_id,
                policy_arn=policy.arn,
                status=ExecutionStatus.IN_PROGRESS.value,
                as_of=as_of,
                start_time=utcnow(),
                has_impacted_resources=any(r["status"] == "IN_PROGRESS" for r in rows),
                resources_total=len(rows),
                resources_succeeded=0,
                resources_failed=0,
                resources_skipped=0,
                bytes_freed=0,
            )
        )
        db.flush()
        db.add_all(R(execution_id=execution_id, seq=seq, **row) for seq, row in enumerate(rows))


def _row(decision: Any, parent: str | None, names: dict[int, str]) -> dict[str, Any]:
    """A step: pending when it acts; SUCCESS when already in the wanted state (as Image Builder
    reports it); otherwise SKIPPED with the reason (an exclusion, a guard, a rule not including it)."""
    acting = decision.action != "none"
    done = not acting and decision.reason.startswith("already")
    return {
        "kind": decision.kind,
        "parent_resource_id": parent,
        "account_id": decision.account,
        "resource_id": decision.resource_id,
        "region": decision.region,
        "status": "IN_PROGRESS" if acting else "SUCCESS" if done else "SKIPPED",
        "status_reason": "pending" if acting else decision.reason,
        "action": names.get(decision.rule, "AVAILABLE") if decision.rule is not None else "AVAILABLE",
        "action_reason": decision.reason,
        "snapshots": [],
        "image_uris": [],
        "bytes": decision.bytes,
    }


def _finish(
    execution_id: str,
    actions: Actions,
    fresh: dict[str, AmiCandidate] | None,
    renew: Callable[[], None],
    owner: str,
) -> None:
    """Do every pending step of the execution in order, committing each result on its own; a step on
    an AMI or snapshot that ``owner`` (the policy's account) does not own is refused, never done."""
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.lifecycle import LifecycleExecutionResourceRow as R

    with session() as db:
        steps = [
            (r.id, r.kind, r.resource_id, r.region, r.action, r.parent_resource_id, r.status, r.account_id)
            for r in db.scalars(select(R).where(R.execution_id == execution_id).order_by(R.seq))
        ]
    outcome: dict[str, str] = {}  # resource id -> final status, for children/parents checks
    cancelled = False
    for row_id, kind, resource_id, region, action, parent, status, account in steps:
        if status != "IN_PROGRESS":
            outcome[resource_id] = status
            continue
        cancelled = cancelled or _cancel_requested(execution_id)
        if cancelled:
            result, reason = "SKIPPED", "execution cancelled before this step"
        elif kind != "image" and account and account != owner:
            result, reason = "SKIPPED", (
                f"kept on ownership check: {kind} {resource_id} in account {account}, region {region} "
                f"is not the policy's account {owner}'s"
            )
        else:
            result, reason = _guard(kind, resource_id, action, parent, outcome, fresh, steps)
        if result is None:
            started = utcnow()
            try:
                _act(actions, kind, resource_id, region or "", action, started)
                result, reason = "SUCCESS", "done"
            except Exception as error:  # a failed step is recorded; the run goes on with the others
                result, reason = "FAILED", f"{type(error).__name__}: {error}"
        outcome[resource_id] = (
            "SKIPPED_ON_RESUME" if reason.startswith(("excluded on", "kept on")) else result
        )
        renew()
        with session() as db:
            row = db.get(R, row_id)
            assert row is not None
            row.start_time = row.start_time or utcnow()
            row.status, row.status_reason, row.end_time = result, reason, utcnow()


def _cancel_requested(execution_id: str) -> bool:
    from kiln.db.engine import session
    from kiln.db.tables.lifecycle import LifecycleExecutionRow as E

    with session() as db:
        row = db.get(E, execution_id)
        return row is not None and row.status == ExecutionStatus.CANCELLING.value


def _guard(
    kind: str,
    resource_id: str,
    action: str,
    parent: str | None,
    outcome: dict[str, str],
    fresh: dict[str, AmiCandidate] | None,
    steps: list[tuple[Any, ...]],
) -> tuple[str | None, str]:
    """Why a pending step must not run now (result, reason), or (None, "") to go ahead."""
    if kind == "snapshot" and outcome.get(parent or "") != "SUCCESS":
        return "SKIPPED", f"AMI {parent} was not deregistered"
    if kind == "image":
        children = [s[2] for s in steps if s[5] == resource_id and s[1] == "ami"]
        failed = [c for c in children if outcome.get(c) == "FAILED"]
        if failed:
            return "FAILED", f"not {action.lower()}d: step(s) failed for {', '.join(failed)}"
        stayed = [c for c in children if outcome.get(c) == "SKIPPED_ON_RESUME"]
        if stayed and action == "DELETE":
            why = "found in use or protected on resume, or not the policy account's"
            return "SKIPPED", f"kept: AMI(s) {', '.join(stayed)} stay ({why})"
    if fresh is not None and kind == "ami" and action in ("DISABLE", "DELETE"):
        ami = fresh.get(resource_id)
        if ami is not None and ami.in_use_by:
            return "SKIPPED", f"excluded on resume: in use by {'; '.join(sorted(ami.in_use_by))}"
        if ami is not None and action == "DELETE" and ami.deregistration_protected:
            return "SKIPPED", "kept on resume: deregistration protection is on"
    return None, ""


def _act(actions: Actions, kind: str, resource_id: str, region: str, action: str, now: datetime) -> None:
    if kind == "snapshot":
        actions.delete_snapshot(region, resource_id)
    elif kind == "ami":
        if action == "DEPRECATE":
            actions.deprecate_ami(region, resource_id, now)
        elif action == "DISABLE":
            actions.disable_ami(region, resource_id)
        else:
            actions.deregister_ami(region, resource_id)
    elif action == "DELETE":
        actions.mark_image_deleted(resource_id)
    else:
        actions.set_image_status(resource_id, "DEPRECATED" if action == "DEPRECATE" else "DISABLED")


def _close(execution_id: str, *, reason: str | None) -> None:
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.lifecycle import LifecycleExecutionResourceRow as R
    from kiln.db.tables.lifecycle import LifecycleExecutionRow as E

    with session() as db:
        execution = db.get(E, execution_id)
        assert execution is not None
        rows = list(db.scalars(select(R).where(R.execution_id == execution_id)))
        counts = {s: sum(1 for r in rows if r.status == s) for s in ("SUCCESS", "FAILED", "SKIPPED")}
        execution.resources_succeeded = counts["SUCCESS"]
        execution.resources_failed = counts["FAILED"]
        execution.resources_skipped = counts["SKIPPED"]
        execution.bytes_freed = sum(r.bytes for r in rows if r.kind == "snapshot" and r.status == "SUCCESS")
        failed = counts["FAILED"] > 0
        parts = [reason] if reason else []
        if execution.status == ExecutionStatus.CANCELLING.value:
            execution.status = ExecutionStatus.CANCELLED.value
            parts = ["cancelled; resources processed before it stay as they are"]
        else:
            execution.status = (ExecutionStatus.FAILED if failed else ExecutionStatus.SUCCESS).value
        if failed:
            parts.append(f"{counts['FAILED']} resource action(s) failed")
        execution.reason = "; ".join(parts) or None
        execution.end_time = utcnow()
