"""Image records, the event log, leases and exactly-once claims on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from kiln.errors import InvalidInput
from kiln.schedule import claims, leases
from kiln.services.builds import records as images
from kiln.services.common import events

SELF = "arn:aws:imagebuilder:local:123456789012"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def new_image(name: str = "web", version: str = "1.0.0") -> str:
    return images.create_image(
        name=name, version=version, recipe_arn=f"{SELF}:image-recipe/{name}/{version}",
        infrastructure_arn=f"{SELF}:infrastructure-configuration/infra", tags={"team": "web"},
    )


def test_build_numbers_count_per_recipe_version(kiln_on_postgres: str) -> None:
    assert new_image() == f"{SELF}:image/web/1.0.0/1"
    assert new_image() == f"{SELF}:image/web/1.0.0/2"
    assert new_image(version="1.0.1") == f"{SELF}:image/web/1.0.1/1"
    row = images.get_row(f"{SELF}:image/web/1.0.0/2")
    assert row.status == "PENDING"
    assert row.tags == {"team": "web"}
    assert row.date_created.tzinfo is not None


def test_concurrent_creates_get_distinct_build_numbers(kiln_on_postgres: str) -> None:
    """Allocation reads max()+1: the writers must be serialised, as BEGIN IMMEDIATE does on SQLite."""
    created: list[str] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            for _ in range(5):
                created.append(new_image())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(int(arn.rsplit("/", 1)[1]) for arn in created) == list(range(1, 21))


def test_status_changes_are_recorded_as_events(kiln_on_postgres: str) -> None:
    arn = new_image()
    images.set_status(arn, "BUILDING")
    images.set_status(arn, "FAILED", reason="step Say failed")
    row = images.get_row(arn)
    assert (row.status, row.reason) == ("FAILED", "step Say failed")
    recorded = [e for e in events.list_events() if e["arn"] == arn]
    assert [e["detail"]["state"]["status"] for e in recorded] == ["BUILDING", "FAILED"]
    assert recorded[1]["detail"]["state"]["reason"] == "step Say failed"
    assert all(e["kind"] == "EC2 Image Builder Image State Change" for e in recorded)
    assert events.list_events(since_id=recorded[0]["id"])[0]["id"] == recorded[1]["id"]


def test_leases_acquire_expire_renew_release(kiln_on_postgres: str) -> None:
    assert leases.acquire("tick", "a", 30, now=T0)
    assert not leases.acquire("tick", "b", 30, now=T0 + timedelta(seconds=10))
    assert leases.holder_of("tick", now=T0 + timedelta(seconds=10)) == "a"
    assert leases.renew("tick", "a", 30, now=T0 + timedelta(seconds=20))
    assert not leases.acquire("tick", "b", 30, now=T0 + timedelta(seconds=40))
    assert leases.acquire("tick", "b", 30, now=T0 + timedelta(seconds=60))  # a's lease lapsed
    assert not leases.renew("tick", "a", 30, now=T0 + timedelta(seconds=61))
    assert not leases.release("tick", "a")
    assert leases.release("tick", "b")
    assert leases.holder_of("tick", now=T0) is None


def test_concurrent_acquires_have_one_winner(kiln_on_postgres: str) -> None:
    barrier = threading.Barrier(6)
    won: list[str] = []

    def contend(holder: str) -> None:
        barrier.wait()
        if leases.acquire("build", holder, 300):
            won.append(holder)

    threads = [threading.Thread(target=contend, args=(f"h{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert leases.holder_of("build") == won[0]


def test_each_due_run_is_claimed_exactly_once(kiln_on_postgres: str) -> None:
    assert claims.claim_due_run("pipeline/web", T0, "s1")
    assert not claims.claim_due_run("pipeline/web", T0, "s2")
    assert claims.claim_due_run("pipeline/web", T0 + timedelta(days=1), "s2")
    assert claims.claim_due_run("pipeline/db", T0, "s2")
    assert claims.last_claimed() == {"pipeline/web": T0 + timedelta(days=1), "pipeline/db": T0}
    assert claims.last_claimed(["pipeline/db"]) == {"pipeline/db": T0}
    assert claims.prune_claims(T0 + timedelta(days=5)) == 1  # the latest claim per key is kept
    assert not claims.claim_due_run("pipeline/web", T0 + timedelta(days=1), "s3")


def test_concurrent_claims_of_one_due_run_have_one_winner(kiln_on_postgres: str) -> None:
    barrier = threading.Barrier(6)
    won: list[str] = []

    def contend(holder: str) -> None:
        barrier.wait()
        if claims.claim_due_run("pipeline/web", T0, holder):
            won.append(holder)

    threads = [threading.Thread(target=contend, args=(f"s{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1


def test_jobs_version_counts_bumps(kiln_on_postgres: str) -> None:
    assert claims.jobs_version() == 0
    claims.bump_jobs_version()
    claims.bump_jobs_version()
    assert claims.jobs_version() == 2


def test_a_value_longer_than_its_column_is_a_one_line_input_error(kiln_on_postgres: str) -> None:
    """SQLite stores any length; PostgreSQL refuses, and kiln reports it as bad input, not a traceback."""
    with pytest.raises(InvalidInput) as caught:
        events.add_webhook("http://127.0.0.1/" + "x" * 3000)
    assert "too long" in str(caught.value)
    assert events.list_webhooks() == []
    hook = events.add_webhook("http://127.0.0.1/hook")
    assert [h["url"] for h in events.list_webhooks()] == [hook["url"]]
