"""The lifecycle rule evaluator: a pure function from a policy and plain candidate data to a Plan.

Semantics follow the Image Builder user guide ("How lifecycle management rules work", "How
lifecycle policy execution works"):

* Selection: ``recipes`` match the image's recipe name and version (``x`` nodes are wildcards);
  ``tagMap`` selects images carrying *any* listed tag (key and value). Images with a build in
  progress are skipped this run; deleted images are reported and left alone.
* Grouping: AGE/COUNT retention is computed per recipe version (name + exact version), newest
  first by creation date (then build number, then ARN). FAILED and CANCELLED images never take a
  retention slot, and always qualify for DELETE.
* Precedence: rules are tried in the order DEPRECATE, DISABLE, DELETE; the first that matches is
  the image's only action this run (a later run can move it further). DEPRECATE skips images
  already deprecated/disabled/failed/cancelled; DISABLE skips disabled/failed/cancelled.
* Retention before exclusion: the newest ``retainAtLeast`` (AGE) or ``value`` (COUNT) images are
  kept whatever their tags; only images beyond retention are checked against
  ``exclusionRules.tagMap``. kiln honours ``retainAtLeast`` on every action, not only DELETE, so a
  policy never deprecates or disables the images kept for rollback.
* Ages: an image is older than ``N UNIT`` when created strictly before ``as_of - N UNIT``. DAYS and
  WEEKS are exact durations; MONTHS and YEARS are calendar steps (2026-03-31 minus 1 month is
  2026-02-28, clamped to the month's last day).
* AMIs (only when ``includeResources.amis``): checked in the documented order region, public,
  AMI tags, shared accounts, last launched (an AMI never launched is *not* protected). kiln adds
  two guards: an AMI in use (instance, launch template version) is never disabled or deleted, and
  deregistration protection blocks deletion. A DELETE keeps the image record when any of its AMIs
  is kept, so no AMI is left without its image.
* Snapshots of a deregistered AMI are deleted only with ``includeResources.snapshots``; otherwise
  the plan reports them left behind with the bytes they keep. A snapshot also used by an AMI that
  stays is kept. Snapshots still listed for an AMI deregistered earlier go when the image is
  deleted by a rule that includes snapshots. Bytes are each snapshot's unique blob bytes as the
  store reports them (``AmiCandidate.unique_bytes``).
* Order: recipe name, numeric recipe version, newest image first; an image's AMIs by region and
  id; snapshots by id. The same input gives the same plan whatever its order.
"""

from __future__ import annotations

import calendar
import gc
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from kiln.model.lifecycle import ActionType, FilterType, PolicyDetail, ResourceSelection, TimeUnit
from kiln.model.states import ACTIVE_BUILD_STATES

Action = Literal["deprecate", "disable", "delete", "none"]
Kind = Literal["image", "ami", "snapshot"]

BUILDING = frozenset(ACTIVE_BUILD_STATES)
NO_SLOT = frozenset({"FAILED", "CANCELLED"})
_NOT_LIVE = BUILDING | {"DELETED"}
_SKIP_STATES = {
    ActionType.DEPRECATE: frozenset({"DEPRECATED", "DISABLED", "FAILED", "CANCELLED"}),
    ActionType.DISABLE: frozenset({"DISABLED", "FAILED", "CANCELLED"}),
    ActionType.DELETE: frozenset(),
}
ORDER = (ActionType.DEPRECATE, ActionType.DISABLE, ActionType.DELETE)
_VERB: dict[ActionType, Action] = {
    ActionType.DEPRECATE: "deprecate",
    ActionType.DISABLE: "disable",
    ActionType.DELETE: "delete",
}


@dataclass(frozen=True, slots=True)
class AmiCandidate:
    """One output AMI of an image, as the store (or EC2) sees it now."""

    image_id: str
    region: str
    account: str
    creation_date: datetime
    deprecation_time: datetime | None = None
    state: str = "available"  # available | disabled | deregistered | pending | failed
    public: bool = False
    shared_accounts: Sequence[str] = ()
    last_launched: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    snapshot_ids: Sequence[str] = ()
    unique_bytes: Mapping[str, int] = field(default_factory=dict)  # snapshot id -> bytes only it holds
    in_use_by: Sequence[str] = ()  # e.g. "instance i-… (running)", "launch template lt-… version 3"
    deregistration_protected: bool = False


@dataclass(frozen=True, slots=True)
class ImageCandidate:
    """One Image Builder image (a build of a recipe version) with its output AMIs."""

    arn: str
    name: str
    semantic_version: str
    build_version: int
    recipe_name: str
    recipe_version: str
    date_created: datetime
    tags: Mapping[str, str] = field(default_factory=dict)
    status: str = "AVAILABLE"
    amis: Sequence[AmiCandidate] = ()


class PolicyLike(Protocol):
    """What the evaluator needs from a policy (Create request and stored policy both fit)."""

    @property
    def policyDetails(self) -> Sequence[PolicyDetail]: ...

    @property
    def resourceSelection(self) -> ResourceSelection: ...


@dataclass(slots=True)
class Decision:
    kind: Kind
    resource_id: str
    region: str | None
    account: str | None
    action: Action
    reason: str
    rule: int | None = None  # index into policyDetails of the rule behind the action
    bytes: int = 0  # snapshots: bytes freed when deleted, bytes kept otherwise
    # the exclusion rule that kept the resource: (its name in the policy, the value that held)
    exclusion: tuple[str, str] | None = None


@dataclass(slots=True)
class AmiPlan:
    decision: Decision
    snapshots: list[Decision] = field(default_factory=list)
    candidate: AmiCandidate | None = field(default=None, repr=False, compare=False)


@dataclass(slots=True)
class ImagePlan:
    decision: Decision
    recipe: str  # "name/version", the retention group
    amis: list[AmiPlan] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    as_of: datetime
    images: list[ImagePlan]

    def decisions(self) -> Iterable[tuple[Decision, str | None]]:
        """Every decision with its parent resource id, in plan order (image, its AMIs, their snapshots)."""
        for image in self.images:
            yield image.decision, None
            for ami in image.amis:
                yield ami.decision, image.decision.resource_id
                for snap in ami.snapshots:
                    yield snap, ami.decision.resource_id

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        freed = left = 0
        for decision, _ in self.decisions():
            counts[f"{decision.kind}s_{decision.action}"] += 1
            if decision.kind == "snapshot":
                if decision.action == "delete":
                    freed += decision.bytes
                elif decision.reason.startswith("left"):
                    left += decision.bytes
        return {
            **dict(sorted(counts.items())),
            "bytes_freed": freed,
            "bytes_left_in_orphaned_snapshots": left,
        }


# ---------------------------------------------------------------------------------------------- time


def subtract(moment: datetime, value: int, unit: TimeUnit) -> datetime:
    """``moment`` minus ``value`` units; months and years step the calendar, clamping the day."""
    if unit is TimeUnit.DAYS:
        return moment - timedelta(days=value)
    if unit is TimeUnit.WEEKS:
        return moment - timedelta(weeks=value)
    months = value * (12 if unit is TimeUnit.YEARS else 1)
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _span(value: int, unit: TimeUnit) -> str:
    return f"{value} {unit.value.lower() if value != 1 else unit.value.lower().rstrip('s')}"


# ------------------------------------------------------------------------------------------ selection


def _version_matches(pattern: str, version: str) -> bool:
    want, have = pattern.split("."), version.split(".")
    if len(have) != 3 or not all(h.isdigit() for h in have):
        return False
    return all(w == "x" or int(w) == int(h) for w, h in zip(want, have, strict=True))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) if n.isdigit() else -1 for n in version.split("."))


def selected(selection: ResourceSelection, image: ImageCandidate) -> bool:
    if selection.recipes is not None:
        return any(
            r.name == image.recipe_name and _version_matches(r.semanticVersion, image.recipe_version)
            for r in selection.recipes
        )
    tags = selection.tagMap or {}
    return any(image.tags.get(key) == value for key, value in tags.items())


# --------------------------------------------------------------------------------------------- images


class _Rule:
    """One policy detail, prepared against ``as_of`` (plain values: this runs per image)."""

    __slots__ = (
        "detail",
        "excluded_tags",
        "index",
        "is_count",
        "is_delete",
        "keep",
        "retain",
        "skip",
        "span",
        "threshold",
        "threshold_day",
        "type",
        "verb",
    )

    def __init__(self, index: int, detail: PolicyDetail, as_of: datetime) -> None:
        flt = detail.filter
        self.index = index
        self.detail = detail
        self.type = detail.action.type
        self.verb = self.type.value
        self.is_delete = self.type is ActionType.DELETE
        self.skip = _SKIP_STATES[self.type]
        self.is_count = flt.type is FilterType.COUNT
        self.keep = flt.value
        self.retain = flt.retainAtLeast or 0
        self.threshold = subtract(as_of, flt.value, flt.unit) if flt.unit and not self.is_count else None
        self.threshold_day = f"{self.threshold:%Y-%m-%d}" if self.threshold else ""
        self.span = _span(flt.value, flt.unit) if flt.unit else ""
        rules = detail.exclusionRules
        self.excluded_tags = sorted((rules.tagMap or {}).items()) if rules else []

    def judge(
        self, image: ImageCandidate, rank: int | None, size: int, as_of: datetime
    ) -> tuple[bool, str, tuple[str, str] | None]:
        """(matches, why, the exclusion that kept it if one did) for one image."""
        verb, status = self.verb, image.status
        if status in self.skip:
            return False, f"{verb}: skipped, image already {status.lower()}", None
        if self.is_delete and status in NO_SLOT:
            head = f"{verb} rule {self.index}: {status.lower()} images always qualify and hold no slot"
        elif self.is_count:
            if rank is not None and rank <= self.keep:
                return False, f"{verb}: kept, newest {rank} of {size} (COUNT keeps {self.keep})", None
            head = f"{verb} rule {self.index}: rank {rank} of {size}, COUNT keeps the newest {self.keep}"
        else:
            assert self.threshold is not None
            created = image.date_created
            if created >= self.threshold:
                return False, f"{verb}: age {(as_of - created).days}d is within {self.span}", None
            if rank is not None and rank <= self.retain:
                return False, (
                    f"{verb}: retainAtLeast {self.retain} keeps it (newest {rank} of {size}, "
                    f"age {(as_of - created).days}d)"
                ), None
            head = (
                f"{verb} rule {self.index}: age {(as_of - created).days}d, older than {self.span} "
                f"(created before {self.threshold_day})"
            )
        if self.excluded_tags:
            tags = image.tags
            for key, value in self.excluded_tags:
                if tags.get(key) == value:
                    held = ("exclusionRules.tagMap", f"{key}={value}")
                    return False, f"{verb}: excluded by image tag {key}={value}", held
        return True, head, None


def _groups(
    images: Sequence[ImageCandidate],
) -> tuple[list[ImageCandidate], dict[str, tuple[int | None, int]]]:
    """Images in plan order (recipe name, numeric version, newest first) and, per ARN, the rank among
    its recipe version's slot-holding images (newest first) with the number of such images."""
    groups: dict[tuple[str, str], list[ImageCandidate]] = defaultdict(list)
    for image in images:
        groups[(image.recipe_name, image.recipe_version)].append(image)
    ordered: list[ImageCandidate] = []
    ranks: dict[str, tuple[int | None, int]] = {}
    for key in sorted(groups, key=lambda k: (k[0], _version_key(k[1]))):
        members = groups[key]
        members.sort(key=lambda i: (i.date_created, i.build_version, i.arn), reverse=True)
        ordered.extend(members)
        holders = [m for m in members if m.status not in NO_SLOT and m.status not in _NOT_LIVE]
        size = len(holders)
        for position, member in enumerate(holders, 1):
            ranks[member.arn] = (position, size)
        for member in members:
            if member.arn not in ranks:
                ranks[member.arn] = (None, size)
    return ordered, ranks


# ----------------------------------------------------------------------------------------------- AMIs


class _AmiRules:
    """A rule's AMI side, prepared once: what it includes and the AMI exclusions, in the documented order."""

    __slots__ = (
        "action",
        "include",
        "index",
        "is_delete",
        "is_deprecate",
        "is_disable",
        "launched",
        "launched_after",
        "public",
        "regions",
        "shared",
        "tags",
        "verb",
    )

    def __init__(self, rule: _Rule, as_of: datetime) -> None:
        detail = rule.detail
        include = detail.action.includeResources
        self.include = bool(include and include.amis)
        self.index, self.verb, self.action = rule.index, rule.verb, _VERB[rule.type]
        self.is_delete = rule.type is ActionType.DELETE
        self.is_deprecate = rule.type is ActionType.DEPRECATE
        self.is_disable = rule.type is ActionType.DISABLE
        amis = detail.exclusionRules.amis if detail.exclusionRules else None
        self.regions = frozenset(amis.regions or ()) if amis else frozenset()
        self.public = bool(amis and amis.isPublic)
        self.tags = sorted((amis.tagMap or {}).items()) if amis else []
        self.shared = frozenset(amis.sharedAccounts or ()) if amis else frozenset()
        last = amis.lastLaunched if amis else None
        self.launched_after = subtract(as_of, last.value, last.unit) if last else None
        self.launched = _span(last.value, last.unit) if last else ""

    def exclusion(self, ami: AmiCandidate) -> tuple[str, str, str] | None:
        """(rule name, the value that held, why) of the first exclusion that keeps the AMI."""
        if ami.region in self.regions:
            return "amis.regions", ami.region, f"excluded: region {ami.region}"
        if self.public and ami.public:
            return "amis.isPublic", "true", "excluded: AMI is public"
        for key, value in self.tags:
            if ami.tags.get(key) == value:
                return "amis.tagMap", f"{key}={value}", f"excluded: AMI tag {key}={value}"
        if self.shared and ami.shared_accounts:
            shared = sorted(self.shared.intersection(ami.shared_accounts))
            if shared:
                why = f"excluded: shared with account {', '.join(shared)}"
                return "amis.sharedAccounts", ",".join(shared), why
        # an AMI never launched has no last-launched time, and so is not protected by this rule
        launched = ami.last_launched
        if self.launched_after is not None and launched is not None and launched >= self.launched_after:
            return (
                "amis.lastLaunched",
                self.launched,
                f"excluded: launched {launched:%Y-%m-%d}, within {self.launched}",
            )
        return None

    def decide(self, ami: AmiCandidate, as_of: datetime) -> tuple[Decision, bool]:
        """The AMI's decision, and whether an exclusion or guard keeps it (so a DELETE keeps the image)."""
        out = Decision("ami", ami.image_id, ami.region, ami.account, "none", "", self.index)
        if ami.state == "deregistered":
            out.reason = "already deregistered"
        elif not self.include:
            out.reason = f"image {self.action}d; rule does not include AMIs"
        elif self.is_deprecate and ami.deprecation_time is not None and ami.deprecation_time <= as_of:
            out.reason = "already deprecated"
        elif self.is_disable and ami.state == "disabled":
            out.reason = "already disabled"
        elif (excluded := self.exclusion(ami)) is not None:
            name, value, out.reason = excluded
            out.exclusion = (f"exclusionRules.{name}", value)
            return out, True
        elif not self.is_deprecate and ami.in_use_by:
            out.reason = f"excluded: in use by {'; '.join(sorted(ami.in_use_by))}"
            return out, True
        elif self.is_delete and ami.deregistration_protected:
            out.reason = "kept: deregistration protection is on"
            return out, True
        else:
            out.action = self.action
            out.reason = f"{self.verb} rule {self.index} includes AMIs"
        return out, False


# ----------------------------------------------------------------------------------------------- plan


def evaluate(policy: PolicyLike, images: Sequence[ImageCandidate], *, as_of: datetime) -> Plan:
    """Decide, for every selected image, AMI and snapshot, what the policy does now and why."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    rules = sorted(
        (_Rule(i, d, as_of) for i, d in enumerate(policy.policyDetails)),
        key=lambda r: ORDER.index(r.type),
    )
    selection = policy.resourceSelection
    memo: dict[tuple[str, str], bool] = {}
    chosen = []
    for image in images:
        key = (image.recipe_name, image.recipe_version)
        hit = memo.get(key) if selection.recipes is not None else None
        if hit is None:
            hit = selected(selection, image)
            if selection.recipes is not None:
                memo[key] = hit
        if hit:
            chosen.append(image)
    ordered, ranks = _groups(chosen)
    ami_rules = {rule.index: _AmiRules(rule, as_of) for rule in rules}
    collecting = gc.isenabled()
    gc.disable()  # hundreds of thousands of small objects: generational GC passes would dominate
    try:
        plans = [_plan_image(image, rules, ami_rules, ranks, as_of) for image in ordered]
        with_snapshots = {
            i
            for i, d in enumerate(policy.policyDetails)
            if d.action.includeResources is not None and bool(d.action.includeResources.snapshots)
        }
        _plan_snapshots(plans, images, with_snapshots)
    finally:
        if collecting:
            gc.enable()
    for plan in plans:
        if len(plan.amis) > 1:
            plan.amis.sort(key=lambda a: (a.decision.region or "", a.decision.resource_id))
    return Plan(as_of=as_of, images=plans)


def _plan_image(
    image: ImageCandidate,
    rules: Sequence[_Rule],
    ami_rules: Mapping[int, _AmiRules],
    ranks: Mapping[str, tuple[int | None, int]],
    as_of: datetime,
) -> ImagePlan:
    # an Image Builder image lives in the region and account its ARN names
    parts = image.arn.split(":", 5)
    region, account = (parts[3] or None, parts[4] or None) if len(parts) == 6 else (None, None)
    decision = Decision("image", image.arn, region, account, "none", "")
    plan = ImagePlan(decision, f"{image.recipe_name}/{image.recipe_version}", [])
    amis = plan.amis
    status = image.status
    if status in BUILDING:
        decision.reason = f"skipped: build in progress ({status.lower()}); evaluated next run"
    elif status == "DELETED":
        decision.reason = "already deleted"
    else:
        rank, size = ranks[image.arn]
        winner: _Rule | None = None
        why = ""
        reasons: list[str] = []
        later: list[str] = []
        held: tuple[str, str] | None = None
        for rule in rules:
            ok, reason, excluded = rule.judge(image, rank, size, as_of)
            if ok and winner is None:
                winner, why = rule, reason
            elif ok:
                later.append(rule.verb)
            held = held or excluded
            reasons.append(reason)
        if winner is None:
            decision.reason = "; ".join(reasons)
            decision.exclusion = held
        else:
            on_amis = ami_rules[winner.index]
            decision.action = on_amis.action
            decision.rule = winner.index
            decision.reason = f"{why}; also matches {', '.join(later)} (a later run)" if later else why
            kept: list[str] = []
            for ami in image.amis:
                ami_decision, stays = on_amis.decide(ami, as_of)
                amis.append(AmiPlan(ami_decision, [], ami))
                if stays:
                    kept.append(ami.image_id)
            if kept and winner.is_delete:
                decision.action = "none"
                decision.reason = f"kept: {len(kept)} AMI(s) stay ({', '.join(kept)}); {why}"
    if not amis:
        for ami in image.amis:
            amis.append(
                AmiPlan(Decision("ami", ami.image_id, ami.region, ami.account, "none", "image kept"), [], ami)
            )
    return plan


def _plan_snapshots(
    plans: Sequence[ImagePlan], everything: Sequence[ImageCandidate], with_snapshots: set[int]
) -> None:
    """A snapshot goes only with its AMI, if the rule includes snapshots and no AMI that stays uses it."""
    users: dict[str, list[str]] = {}
    for image in everything:
        for ami in image.amis:
            if ami.state != "deregistered":
                for snap in ami.snapshot_ids:
                    found = users.get(snap)
                    if found is None:
                        users[snap] = [ami.image_id]
                    else:
                        found.append(ami.image_id)
    going = {a.decision.resource_id for p in plans for a in p.amis if a.decision.action == "delete"}
    for plan in plans:
        for ami_plan in plan.amis:
            ami = ami_plan.candidate
            assert ami is not None
            verdict = ami_plan.decision
            rule = verdict.rule
            # an AMI deregistered earlier (by hand, or by a rule without snapshots) may have left its
            # snapshots behind: they go with the image's deletion too
            deleting = verdict.action == "delete" or (
                ami.state == "deregistered" and plan.decision.action == "delete"
            )
            out = ami_plan.snapshots
            snapshot_ids = ami.snapshot_ids if len(ami.snapshot_ids) < 2 else sorted(ami.snapshot_ids)
            for snap in snapshot_ids:
                size = ami.unique_bytes.get(snap, 0)
                if not deleting:
                    out.append(
                        Decision("snapshot", snap, ami.region, ami.account, "none", "AMI kept", rule, size)
                    )
                    continue
                sharing = users.get(snap, ())
                others = sorted(u for u in sharing if u not in going) if len(sharing) > 1 else ()
                if others:
                    action, reason = "none", f"kept: also used by {', '.join(others)}"
                elif rule in with_snapshots:
                    action, reason = "delete", f"AMI {ami.image_id} deregistered; rule includes snapshots"
                    if verdict.action != "delete":
                        reason = f"orphaned: AMI {ami.image_id} already deregistered; rule includes snapshots"
                else:
                    action = "none"
                    reason = f"left: rule does not include snapshots; keeps {size} bytes after deregistration"
                out.append(Decision("snapshot", snap, ami.region, ami.account, action, reason, rule, size))
