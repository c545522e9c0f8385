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
  stays is kept. Bytes are each snapshot's unique blob bytes as the store reports them.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from kiln.model.lifecycle import ActionType, FilterType, PolicyDetail, ResourceSelection, TimeUnit

Action = Literal["deprecate", "disable", "delete", "none"]
Kind = Literal["image", "ami", "snapshot"]

BUILDING = frozenset(
    {"PENDING", "CREATING", "BUILDING", "IMPORTING", "TESTING", "DISTRIBUTING", "INTEGRATING"}
)
NO_SLOT = frozenset({"FAILED", "CANCELLED"})
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


@dataclass(slots=True)
class AmiPlan:
    decision: Decision
    snapshots: list[Decision] = field(default_factory=list)


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


def _tag_hit(wanted: Mapping[str, str] | None, tags: Mapping[str, str]) -> str | None:
    for key, value in sorted((wanted or {}).items()):
        if tags.get(key) == value:
            return f"{key}={value}"
    return None


# --------------------------------------------------------------------------------------------- images


@dataclass(slots=True)
class _Verdict:
    matches: bool
    reason: str


class _Rule:
    """One policy detail, prepared against ``as_of``."""

    __slots__ = ("detail", "index", "threshold", "type")

    def __init__(self, index: int, detail: PolicyDetail, as_of: datetime) -> None:
        self.index = index
        self.detail = detail
        self.type = detail.action.type
        flt = detail.filter
        self.threshold = (
            subtract(as_of, flt.value, flt.unit) if flt.type is FilterType.AGE and flt.unit else None
        )

    def judge(self, image: ImageCandidate, rank: int | None, group_size: int, as_of: datetime) -> _Verdict:
        verb = self.type.value
        if image.status in _SKIP_STATES[self.type]:
            return _Verdict(False, f"{verb}: skipped, image already {image.status.lower()}")
        flt = self.detail.filter
        failed = image.status in NO_SLOT
        if failed and self.type is ActionType.DELETE:
            head = f"{verb} rule {self.index}: {image.status.lower()} images always qualify and hold no slot"
        elif flt.type is FilterType.COUNT:
            assert rank is not None
            if rank <= flt.value:
                return _Verdict(
                    False, f"{verb}: kept, newest {rank} of {group_size} (COUNT keeps {flt.value})"
                )
            head = (
                f"{verb} rule {self.index}: rank {rank} of {group_size}, COUNT keeps the newest {flt.value}"
            )
        else:
            assert self.threshold is not None and flt.unit is not None
            age_days = (as_of - image.date_created).days
            if image.date_created >= self.threshold:
                return _Verdict(False, f"{verb}: age {age_days}d is within {_span(flt.value, flt.unit)}")
            if flt.retainAtLeast and rank is not None and rank <= flt.retainAtLeast:
                return _Verdict(
                    False,
                    f"{verb}: retainAtLeast {flt.retainAtLeast} keeps it (newest {rank} of {group_size}, "
                    f"age {age_days}d)",
                )
            head = (
                f"{verb} rule {self.index}: age {age_days}d, older than {_span(flt.value, flt.unit)} "
                f"(created before {self.threshold:%Y-%m-%d})"
            )
        rules = self.detail.exclusionRules
        hit = _tag_hit(rules.tagMap if rules else None, image.tags)
        if hit:
            return _Verdict(False, f"{verb}: excluded by image tag {hit}")
        return _Verdict(True, head)


def _group_ranks(images: Sequence[ImageCandidate]) -> dict[str, tuple[int | None, int]]:
    """arn -> (rank among the group's slot-holding images, newest first; group size)."""
    groups: dict[tuple[str, str], list[ImageCandidate]] = defaultdict(list)
    for image in images:
        groups[(image.recipe_name, image.recipe_version)].append(image)
    ranks: dict[str, tuple[int | None, int]] = {}
    for members in groups.values():
        members.sort(key=lambda i: (i.date_created, i.build_version, i.arn), reverse=True)
        holders = [m for m in members if m.status not in NO_SLOT]
        size = len(holders)
        for position, member in enumerate(holders, 1):
            ranks[member.arn] = (position, size)
        for member in members:
            ranks.setdefault(member.arn, (None, size))
    return ranks


# ----------------------------------------------------------------------------------------------- AMIs


def _ami_exclusion(detail: PolicyDetail, ami: AmiCandidate, as_of: datetime) -> str | None:
    rules = detail.exclusionRules.amis if detail.exclusionRules else None
    if rules is None:
        return None
    if rules.regions and ami.region in rules.regions:
        return f"excluded: region {ami.region}"
    if rules.isPublic and ami.public:
        return "excluded: AMI is public"
    hit = _tag_hit(rules.tagMap, ami.tags)
    if hit:
        return f"excluded: AMI tag {hit}"
    if rules.sharedAccounts:
        shared = sorted(set(rules.sharedAccounts).intersection(ami.shared_accounts))
        if shared:
            return f"excluded: shared with account {', '.join(shared)}"
    if rules.lastLaunched and ami.last_launched is not None:
        window = subtract(as_of, rules.lastLaunched.value, rules.lastLaunched.unit)
        if ami.last_launched >= window:
            return (
                f"excluded: launched {ami.last_launched:%Y-%m-%d}, within "
                f"{_span(rules.lastLaunched.value, rules.lastLaunched.unit)}"
            )
    return None


def _ami_decision(
    detail: PolicyDetail, index: int, ami: AmiCandidate, as_of: datetime
) -> tuple[Decision, bool]:
    """The AMI's decision, and whether an exclusion or guard keeps it (so a DELETE keeps the image)."""
    kind = detail.action.type
    verb = _VERB[kind]
    out = Decision("ami", ami.image_id, ami.region, ami.account, "none", "", index)
    include = detail.action.includeResources
    if ami.state == "deregistered":
        out.reason = "already deregistered"
    elif not (include and include.amis):
        out.reason = f"image {verb}d; rule does not include AMIs"
    elif kind is ActionType.DEPRECATE and ami.deprecation_time is not None and ami.deprecation_time <= as_of:
        out.reason = "already deprecated"
    elif kind is ActionType.DISABLE and ami.state == "disabled":
        out.reason = "already disabled"
    elif (excluded := _ami_exclusion(detail, ami, as_of)) is not None:
        out.reason = excluded
        return out, True
    elif kind is not ActionType.DEPRECATE and ami.in_use_by:
        out.reason = f"excluded: in use by {'; '.join(sorted(ami.in_use_by))}"
        return out, True
    elif kind is ActionType.DELETE and ami.deregistration_protected:
        out.reason = "kept: deregistration protection is on"
        return out, True
    else:
        out.action = verb
        out.reason = f"{kind.value} rule {index} includes AMIs"
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
    chosen = [i for i in images if selected(policy.resourceSelection, i)]
    live = [i for i in chosen if i.status not in BUILDING and i.status != "DELETED"]
    ranks = _group_ranks(live)
    plans: list[ImagePlan] = []
    for image in chosen:
        plans.append(_plan_image(image, rules, ranks, as_of))
    with_snapshots = {
        i
        for i, d in enumerate(policy.policyDetails)
        if d.action.includeResources is not None and bool(d.action.includeResources.snapshots)
    }
    _plan_snapshots(plans, images, with_snapshots)
    _sort_within(plans, {i.arn: i for i in chosen})
    return Plan(as_of=as_of, images=plans)


def _sort_within(plans: list[ImagePlan], by_arn: Mapping[str, ImageCandidate]) -> None:
    def key(p: ImagePlan) -> tuple[str, tuple[int, ...], float, int, str]:
        img = by_arn[p.decision.resource_id]
        return (
            img.recipe_name,
            _version_key(img.recipe_version),
            -img.date_created.timestamp(),
            -img.build_version,
            img.arn,
        )

    plans.sort(key=key)
    for plan in plans:
        plan.amis.sort(key=lambda a: (a.decision.region or "", a.decision.resource_id))


def _plan_image(
    image: ImageCandidate,
    rules: Sequence[_Rule],
    ranks: Mapping[str, tuple[int | None, int]],
    as_of: datetime,
) -> ImagePlan:
    recipe = f"{image.recipe_name}/{image.recipe_version}"
    decision = Decision("image", image.arn, None, None, "none", "")
    plan = ImagePlan(decision, recipe)
    if image.status in BUILDING:
        decision.reason = f"skipped: build in progress ({image.status.lower()}); evaluated next run"
    elif image.status == "DELETED":
        decision.reason = "already deleted"
    else:
        rank, size = ranks[image.arn]
        verdicts = [(rule, rule.judge(image, rank, size, as_of)) for rule in rules]
        winner = next(((r, v) for r, v in verdicts if v.matches), None)
        if winner is None:
            decision.reason = "; ".join(v.reason for _, v in verdicts)
        else:
            rule, verdict = winner
            later = [r.type.value for r, v in verdicts if v.matches and r is not rule]
            decision.action = _VERB[rule.type]
            decision.rule = rule.index
            decision.reason = verdict.reason + (
                f"; also matches {', '.join(later)} (a later run)" if later else ""
            )
            kept: list[Decision] = []
            for ami in image.amis:
                ami_decision, stays = _ami_decision(rule.detail, rule.index, ami, as_of)
                plan.amis.append(AmiPlan(ami_decision))
                if stays:
                    kept.append(ami_decision)
            if rule.type is ActionType.DELETE and kept:
                decision.action = "none"
                decision.reason = (
                    f"kept: {len(kept)} AMI(s) stay ({', '.join(d.resource_id for d in kept)}); "
                    + verdict.reason
                )
    if decision.action == "none" and not plan.amis:
        for ami in image.amis:
            plan.amis.append(
                AmiPlan(Decision("ami", ami.image_id, ami.region, ami.account, "none", "image kept"))
            )
    return plan


def _plan_snapshots(
    plans: Sequence[ImagePlan], everything: Sequence[ImageCandidate], with_snapshots: set[int]
) -> None:
    """A snapshot goes only with its AMI, if the rule includes snapshots and no AMI that stays uses it."""
    by_ami: dict[str, AmiCandidate] = {}
    users: dict[str, list[str]] = defaultdict(list)
    for image in everything:
        for ami in image.amis:
            by_ami[ami.image_id] = ami
            if ami.state != "deregistered":
                for snap in ami.snapshot_ids:
                    users[snap].append(ami.image_id)
    going = {a.decision.resource_id for p in plans for a in p.amis if a.decision.action == "delete"}
    for plan in plans:
        for ami_plan in plan.amis:
            ami = by_ami[ami_plan.decision.resource_id]
            rule = ami_plan.decision.rule
            for snap in sorted(ami.snapshot_ids):
                size = ami.unique_bytes.get(snap, 0)
                d = Decision("snapshot", snap, ami.region, ami.account, "none", "", rule, size)
                if ami_plan.decision.action != "delete":
                    d.reason = "AMI kept"
                else:
                    others = sorted(u for u in users.get(snap, ()) if u not in going)
                    if others:
                        d.reason = f"kept: also used by {', '.join(others)}"
                    elif rule in with_snapshots:
                        d.action = "delete"
                        d.reason = f"AMI {ami.image_id} deregistered; rule includes snapshots"
                    else:
                        d.reason = (
                            f"left: rule does not include snapshots; keeps {size} bytes after deregistration"
                        )
                ami_plan.snapshots.append(d)
