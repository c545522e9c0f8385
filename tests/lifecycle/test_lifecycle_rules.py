"""The rule evaluator, table-tested against a fixed ``as_of``."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from lifecycle_fakes import AS_OF, ami, image, policy, rule

from kiln.model.lifecycle import TimeUnit
from kiln.services.lifecycle.rules import evaluate, subtract


def actions(plan) -> dict[str, str]:
    return {d.resource_id: d.action for d, _ in plan.decisions()}


def reasons(plan) -> dict[str, str]:
    return {d.resource_id: d.reason for d, _ in plan.decisions()}


def build(n: int) -> str:
    return image(n).arn


# ------------------------------------------------------------------------------------------------ AGE


@pytest.mark.parametrize(
    ("unit", "value", "days_old", "expected"),
    [
        ("DAYS", 10, 9.9, "none"),
        ("DAYS", 10, 10, "none"),  # exactly at the threshold is not older
        ("DAYS", 10, 10.01, "delete"),
        ("WEEKS", 2, 13.9, "none"),
        ("WEEKS", 2, 14.1, "delete"),
        ("MONTHS", 1, 31.1, "delete"),  # 2026-06-15 minus 1 month = 2026-05-15: 31 days back
        ("MONTHS", 1, 30.5, "none"),  # a 30-day month would have deleted it
        ("MONTHS", 1, 29.9, "none"),
        ("YEARS", 1, 364.9, "none"),
        ("YEARS", 1, 365.1, "delete"),
    ],
)
def test_age_units(unit: str, value: int, days_old: float, expected: str) -> None:
    plan = evaluate(policy(rule("DELETE", "AGE", value, unit)), [image(1, days_old=days_old)], as_of=AS_OF)
    assert actions(plan)[build(1)] == expected


@pytest.mark.parametrize(
    ("as_of", "value", "unit", "threshold"),
    [
        (datetime(2026, 3, 31, 12, tzinfo=UTC), 1, TimeUnit.MONTHS, datetime(2026, 2, 28, 12, tzinfo=UTC)),
        (datetime(2028, 3, 31, 12, tzinfo=UTC), 1, TimeUnit.MONTHS, datetime(2028, 2, 29, 12, tzinfo=UTC)),
        (datetime(2026, 1, 15, tzinfo=UTC), 13, TimeUnit.MONTHS, datetime(2024, 12, 15, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), 1, TimeUnit.YEARS, datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2026, 6, 15, tzinfo=UTC), 2, TimeUnit.WEEKS, datetime(2026, 6, 1, tzinfo=UTC)),
    ],
)
def test_calendar_arithmetic(as_of: datetime, value: int, unit: TimeUnit, threshold: datetime) -> None:
    assert subtract(as_of, value, unit) == threshold


def test_month_boundary_is_calendar_not_thirty_days() -> None:
    as_of = datetime(2026, 3, 31, 12, tzinfo=UTC)
    before = image(1, created=datetime(2026, 2, 28, 11, tzinfo=UTC))
    after = image(2, created=datetime(2026, 2, 28, 13, tzinfo=UTC))
    plan = evaluate(policy(rule("DELETE", "AGE", 1, "MONTHS")), [before, after], as_of=as_of)
    assert actions(plan)[before.arn] == "delete"
    assert actions(plan)[after.arn] == "none"


# ---------------------------------------------------------------------------------- COUNT / retention


def test_count_keeps_newest_per_recipe_version() -> None:
    images = [image(b, days_old=10 - b) for b in range(1, 5)]  # build 4 newest
    images += [image(b, version="1.1.0", days_old=20 - b) for b in range(1, 4)]
    plan = evaluate(policy(rule("DELETE", "COUNT", 2)), images, as_of=AS_OF)
    got = actions(plan)
    assert [got[image(b).arn] for b in (4, 3, 2, 1)] == ["none", "none", "delete", "delete"]
    assert [got[image(b, version="1.1.0").arn] for b in (3, 2, 1)] == ["none", "none", "delete"]
    assert "rank 3 of 4" in reasons(plan)[image(2).arn]
    assert "newest 1 of 4" in reasons(plan)[image(4).arn]


def test_retain_at_least_protects_even_when_age_would_remove_more() -> None:
    images = [image(b, days_old=100 - b) for b in range(1, 5)]  # all older than 30 days
    plan = evaluate(policy(rule("DELETE", "AGE", 30, "DAYS", retain=3)), images, as_of=AS_OF)
    got = actions(plan)
    assert [got[image(b).arn] for b in (4, 3, 2, 1)] == ["none", "none", "none", "delete"]
    assert "retainAtLeast 3 keeps it (newest 2 of 4" in reasons(plan)[image(3).arn]


def test_failed_images_hold_no_slot_and_always_qualify_for_delete() -> None:
    images = [image(3, days_old=1, status="FAILED"), image(2, days_old=2), image(1, days_old=3)]
    plan = evaluate(policy(rule("DELETE", "COUNT", 1)), images, as_of=AS_OF)
    assert actions(plan) | {} == actions(plan)
    got = actions(plan)
    assert (got[image(3).arn], got[image(2).arn], got[image(1).arn]) == ("delete", "none", "delete")
    assert "failed images always qualify" in reasons(plan)[image(3).arn]


def test_image_tag_exclusion_only_beyond_retention() -> None:
    keep = {"Retain": "true"}
    images = [image(3, days_old=50, tags=keep), image(2, days_old=60), image(1, days_old=70, tags=keep)]
    excl = {"tagMap": keep}
    plan = evaluate(policy(rule("DELETE", "AGE", 30, "DAYS", retain=1, exclusions=excl)), images, as_of=AS_OF)
    got = actions(plan)
    assert got[image(3).arn] == "none" and "retainAtLeast" in reasons(plan)[image(3).arn]
    assert got[image(2).arn] == "delete"
    assert got[image(1).arn] == "none" and "excluded by image tag Retain=true" in reasons(plan)[image(1).arn]


# ------------------------------------------------------------------------------------- AMI exclusions


@pytest.mark.parametrize(
    ("exclusion", "ami_fields", "reason"),
    [
        ({"regions": ["eu-west-1"]}, {"region": "eu-west-1"}, "excluded: region eu-west-1"),
        ({"isPublic": True}, {"public": True}, "excluded: AMI is public"),
        ({"tagMap": {"Keep": "yes"}}, {"tags": {"Keep": "yes"}}, "excluded: AMI tag Keep=yes"),
        ({"sharedAccounts": ["111122223333"]}, {"shared_accounts": ("111122223333",)}, "shared with account"),
        (
            {"lastLaunched": {"value": 7, "unit": "DAYS"}},
            {"last_launched": AS_OF - timedelta(days=3)},
            "excluded: launched 2026-06-12",
        ),
    ],
)
def test_ami_exclusions_keep_the_ami_and_the_image_record(exclusion, ami_fields, reason) -> None:
    target = image(1, days_old=90, amis=[ami("ami-00000000000000001", **ami_fields)])
    p = policy(rule("DELETE", "AGE", 30, "DAYS", snapshots=True, exclusions={"amis": exclusion}))
    plan = evaluate(p, [target], as_of=AS_OF)
    assert actions(plan)["ami-00000000000000001"] == "none"
    assert reason in reasons(plan)["ami-00000000000000001"]
    assert actions(plan)[target.arn] == "none"
    assert reasons(plan)[target.arn].startswith("kept: 1 AMI(s) stay")
    assert actions(plan)["snap-00000000000000001"] == "none"


@pytest.mark.parametrize(
    ("last_launched", "expected"),
    [(None, "delete"), (AS_OF - timedelta(days=40), "delete"), (AS_OF - timedelta(days=1), "none")],
)
def test_last_launched_never_launched_is_not_protected(last_launched, expected) -> None:
    target = image(1, days_old=90, amis=[ami("ami-00000000000000001", last_launched=last_launched)])
    excl = {"amis": {"lastLaunched": {"value": 30, "unit": "DAYS"}}}
    plan = evaluate(policy(rule("DELETE", "AGE", 30, "DAYS", exclusions=excl)), [target], as_of=AS_OF)
    assert actions(plan)["ami-00000000000000001"] == expected


def test_in_use_ami_is_never_deleted_or_disabled_but_may_be_deprecated() -> None:
    used = ["instance i-0123456789abcdef0 (running)", "launch template lt-0123456789abcdef0 version 3"]
    target = image(1, days_old=90, amis=[ami("ami-00000000000000001", in_use_by=tuple(used))])
    for action in ("DELETE", "DISABLE"):
        plan = evaluate(
            policy(rule(action, "AGE", 30, "DAYS", snapshots=action == "DELETE")), [target], as_of=AS_OF
        )
        assert actions(plan)["ami-00000000000000001"] == "none"
        assert (
            "in use by instance i-0123456789abcdef0 (running); launch template"
            in reasons(plan)["ami-00000000000000001"]
        )
    plan = evaluate(policy(rule("DEPRECATE", "AGE", 30, "DAYS")), [target], as_of=AS_OF)
    assert actions(plan)["ami-00000000000000001"] == "deprecate"


def test_deregistration_protection_blocks_delete_only() -> None:
    target = image(1, days_old=90, amis=[ami("ami-00000000000000001", deregistration_protected=True)])
    plan = evaluate(policy(rule("DELETE", "AGE", 30, "DAYS")), [target], as_of=AS_OF)
    assert reasons(plan)["ami-00000000000000001"] == "kept: deregistration protection is on"
    assert actions(plan)[target.arn] == "none"
    plan = evaluate(policy(rule("DISABLE", "AGE", 30, "DAYS")), [target], as_of=AS_OF)
    assert actions(plan)["ami-00000000000000001"] == "disable"


def test_amis_not_included_are_left_alone() -> None:
    target = image(1, days_old=90, amis=[ami("ami-00000000000000001")])
    plan = evaluate(policy(rule("DELETE", "AGE", 30, "DAYS", amis=False)), [target], as_of=AS_OF)
    assert actions(plan)[target.arn] == "delete"
    assert actions(plan)["ami-00000000000000001"] == "none"
    assert "does not include AMIs" in reasons(plan)["ami-00000000000000001"]


# ------------------------------------------------------------------------------------------ precedence


PROGRESSIVE = (
    rule("DELETE", "AGE", 90, "DAYS", snapshots=True),
    rule("DEPRECATE", "AGE", 30, "DAYS"),
    rule("DISABLE", "AGE", 60, "DAYS"),
)


@pytest.mark.parametrize(
    ("status", "days_old", "expected"),
    [
        ("AVAILABLE", 100, "deprecate"),  # matches all three; deprecate first, the rest later runs
        ("DEPRECATED", 100, "disable"),
        ("DISABLED", 100, "delete"),
        ("AVAILABLE", 45, "deprecate"),
        ("DEPRECATED", 45, "none"),
        ("DEPRECATED", 70, "disable"),
        ("DISABLED", 70, "none"),
        ("BUILDING", 100, "none"),
        ("DELETED", 100, "none"),
    ],
)
def test_precedence_deprecate_then_disable_then_delete(status: str, days_old: int, expected: str) -> None:
    target = image(1, days_old=days_old, status=status, amis=[ami("ami-00000000000000001")])
    plan = evaluate(policy(*PROGRESSIVE), [target], as_of=AS_OF)
    assert actions(plan)[target.arn] == expected
    if expected != "none":
        assert actions(plan)["ami-00000000000000001"] == expected


def test_deprecate_reports_later_rules_and_rule_index() -> None:
    target = image(1, days_old=100)
    plan = evaluate(policy(*PROGRESSIVE), [target], as_of=AS_OF)
    decision = plan.images[0].decision
    assert decision.rule == 1  # the DEPRECATE detail's index in policyDetails
    assert "also matches DISABLE, DELETE" in decision.reason


def test_already_deprecated_gets_no_repeated_action() -> None:
    done = ami("ami-00000000000000001", deprecation_time=AS_OF - timedelta(days=1))
    target = image(1, days_old=100, status="DEPRECATED", amis=[done])
    plan = evaluate(policy(rule("DEPRECATE", "AGE", 30, "DAYS")), [target], as_of=AS_OF)
    assert actions(plan)[target.arn] == "none"
    assert "already deprecated" in reasons(plan)[target.arn]
    fresh = image(2, days_old=100, amis=[done])  # image record available, its AMI already deprecated
    plan = evaluate(policy(rule("DEPRECATE", "AGE", 30, "DAYS")), [fresh], as_of=AS_OF)
    assert actions(plan)[fresh.arn] == "deprecate"
    assert (actions(plan)["ami-00000000000000001"], reasons(plan)["ami-00000000000000001"]) == (
        "none",
        "already deprecated",
    )


# ------------------------------------------------------------------------------------------- selection


def test_selection_by_recipe_with_wildcards() -> None:
    images = [
        image(1, version="1.0.0", days_old=90),
        image(1, version="1.2.3", days_old=90),
        image(1, version="2.0.0", days_old=90),
        image(1, recipe="db", version="1.0.0", days_old=90),
    ]
    plan = evaluate(
        policy(rule("DELETE", "AGE", 30, "DAYS"), recipes=[("web", "1.x.x")]), images, as_of=AS_OF
    )
    assert sorted(d.resource_id.split("image/")[1] for d, _ in plan.decisions()) == [
        "web/1.0.0/1",
        "web/1.2.3/1",
    ]
    plan = evaluate(
        policy(rule("DELETE", "AGE", 30, "DAYS"), recipes=[("web", "1.2.3")]), images, as_of=AS_OF
    )
    assert [d.resource_id.split("image/")[1] for d, _ in plan.decisions()] == ["web/1.2.3/1"]


def test_selection_by_tag_is_any_of() -> None:
    images = [
        image(1, days_old=90, tags={"env": "test"}),
        image(2, days_old=90, tags={"team": "web"}),
        image(3, days_old=90, tags={"env": "prod"}),
    ]
    plan = evaluate(
        policy(rule("DELETE", "AGE", 30, "DAYS"), tags={"env": "test", "team": "web"}), images, as_of=AS_OF
    )
    assert sorted(actions(plan)) == sorted([image(1).arn, image(2).arn])


# ------------------------------------------------------------------------------------------- snapshots


def test_snapshots_deleted_only_when_included_with_bytes() -> None:
    target = image(
        1, days_old=90, amis=[ami("ami-00000000000000001", snapshots={"snap-a": 700, "snap-b": 300})]
    )
    plan = evaluate(policy(rule("DELETE", "AGE", 30, "DAYS", snapshots=True)), [target], as_of=AS_OF)
    assert actions(plan)["snap-a"] == actions(plan)["snap-b"] == "delete"
    assert plan.summary()["bytes_freed"] == 1000
    plan = evaluate(policy(rule("DELETE", "AGE", 30, "DAYS")), [target], as_of=AS_OF)
    assert actions(plan)["ami-00000000000000001"] == "delete"
    assert actions(plan)["snap-a"] == "none"
    assert (
        reasons(plan)["snap-a"]
        == "left: rule does not include snapshots; keeps 700 bytes after deregistration"
    )
    assert plan.summary()["bytes_freed"] == 0
    assert plan.summary()["bytes_left_in_orphaned_snapshots"] == 1000


def test_snapshot_shared_with_an_ami_that_stays_is_kept() -> None:
    old = image(1, days_old=90, amis=[ami("ami-00000000000000001", snapshots={"snap-shared": 500})])
    new = image(2, days_old=1, amis=[ami("ami-00000000000000002", snapshots={"snap-shared": 500})])
    plan = evaluate(policy(rule("DELETE", "AGE", 30, "DAYS", snapshots=True)), [old, new], as_of=AS_OF)
    snaps = [d for d, parent in plan.decisions() if parent == "ami-00000000000000001"]
    assert [(d.action, d.reason) for d in snaps] == [("none", "kept: also used by ami-00000000000000002")]


# ----------------------------------------------------------------------------------------- determinism


def test_order_is_deterministic_whatever_the_input_order() -> None:
    images = [
        image(b, version=v, days_old=d, amis=[ami(f"ami-{b:05d}{v.replace('.', '')}000000000", region=r)])
        for b, v, d, r in [
            (1, "1.0.0", 90, "b"),
            (2, "1.0.0", 80, "a"),
            (1, "1.10.0", 5, "a"),
            (1, "1.2.0", 60, "a"),
        ]
    ]
    p = policy(rule("DELETE", "COUNT", 1, snapshots=True))
    first = [(d.resource_id, d.action, d.reason) for d, _ in evaluate(p, images, as_of=AS_OF).decisions()]
    for seed in range(5):
        shuffled = images[:]
        random.Random(seed).shuffle(shuffled)
        again = [
            (d.resource_id, d.action, d.reason) for d, _ in evaluate(p, shuffled, as_of=AS_OF).decisions()
        ]
        assert again == first
    versions = [rid.split("/")[-2] for rid, _, _ in first if rid.startswith("arn:")]
    assert versions == ["1.0.0", "1.0.0", "1.2.0", "1.10.0"]  # numeric version order, newest build first


def test_naive_as_of_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(policy(), [], as_of=datetime(2026, 1, 1))


def test_snapshots_left_by_an_earlier_deregistration_go_with_the_image() -> None:
    gone = ami("ami-00000000000000001", state="deregistered", snapshots={"snap-orphan": 4096})
    target = image(1, days_old=90, amis=[gone])
    plan = evaluate(policy(rule("DELETE", "AGE", 30, "DAYS", snapshots=True)), [target], as_of=AS_OF)
    assert actions(plan)[target.arn] == "delete"
    assert (actions(plan)["ami-00000000000000001"], reasons(plan)["ami-00000000000000001"]) == (
        "none",
        "already deregistered",
    )
    assert actions(plan)["snap-orphan"] == "delete"
    assert reasons(plan)["snap-orphan"].startswith("orphaned: AMI ami-00000000000000001 already deregistered")
    assert plan.summary()["bytes_freed"] == 4096
    plan = evaluate(policy(rule("DELETE", "AGE", 30, "DAYS")), [target], as_of=AS_OF)
    assert actions(plan)["snap-orphan"] == "none" and reasons(plan)["snap-orphan"].startswith("left:")


def test_retain_at_least_is_honoured_by_deprecate_too() -> None:
    images = [image(b, days_old=100 - b) for b in range(1, 4)]
    plan = evaluate(policy(rule("DEPRECATE", "AGE", 30, "DAYS", retain=2)), images, as_of=AS_OF)
    got = actions(plan)
    assert [got[image(b).arn] for b in (3, 2, 1)] == ["none", "none", "deprecate"]
