"""Lifecycle across accounts and regions, on real data: each AMI exclusion rule reads the store and the
sharing tables as they are now; a policy acts on its own account's images built in its region, and on
the copies of them its account owns — never another account's copy of a distributed image."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from lifecycle_fakes import AS_OF, FakeActions, FakeCandidateSource, FakeWorld, ami, body, image, policy, rule
from tests.builds.conftest import parent_ami  # noqa: F401 (fixture)
from tests.builds.distribution_helpers import CONSUMER, build, make_build_inputs, make_world

from kiln.db.base import utcnow
from kiln.home import DEFAULT_ACCOUNT
from kiln.services.accounts import accounts
from kiln.services.accounts.regions import create_region
from kiln.services.ec2 import images, instances
from kiln.services.lifecycle.candidates import _ami_candidate
from kiln.services.lifecycle.rules import evaluate

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="launches and builds need root (namespaces, overlayfs)")
PEER = "210987654321"


def _held(ami: str, region: str, amis: dict[str, object]) -> tuple[tuple[str, str] | None, str]:
    """(the exclusion that kept the real AMI, the action) under a DELETE rule with these AMI exclusions."""
    known = [account["Id"] for account in accounts.list_accounts()]
    candidate = _ami_candidate({"image": ami, "region": region}, {}, {}, known)
    assert candidate is not None
    detail = rule("DELETE", "AGE", 30, "DAYS", exclusions={"amis": amis})
    plan = evaluate(policy(detail), [image(1, days_old=90, amis=[candidate])], as_of=utcnow())
    [decision] = [d for d, _ in plan.decisions() if d.resource_id == ami]
    return decision.exclusion, decision.action


@needs_root
def test_each_ami_exclusion_rule_holds_on_live_data(busybox_dir: Path) -> None:
    accounts.create_account("peer", account_id=PEER)
    create_region("us-east-1")
    ami = images.import_image(busybox_dir, name="lifecycle-live")["ImageId"]
    east = images.import_image(busybox_dir, name="lifecycle-east", region="us-east-1")["ImageId"]

    # regions: the AMI lives in a listed region
    assert _held(east, "us-east-1", {"regions": ["us-east-1"]}) == (
        ("exclusionRules.amis.regions", "us-east-1"), "none")
    assert _held(ami, "local", {"regions": ["us-east-1"]}) == (None, "delete")
    # isPublic: launch permission Group all, as granted now
    assert _held(ami, "local", {"isPublic": True}) == (None, "delete")
    images.modify_launch_permission(ami, add=[{"Group": "all"}])
    assert _held(ami, "local", {"isPublic": True}) == (("exclusionRules.amis.isPublic", "true"), "none")
    images.reset_image_attribute(ami)
    assert _held(ami, "local", {"isPublic": True}) == (None, "delete")
    # sharedAccounts: launch permission to one of the listed accounts
    assert _held(ami, "local", {"sharedAccounts": [PEER]}) == (None, "delete")
    images.modify_launch_permission(ami, add=[{"UserId": PEER}])
    assert _held(ami, "local", {"sharedAccounts": [PEER]}) == (("exclusionRules.amis.sharedAccounts", PEER), "none")
    images.reset_image_attribute(ami)
    # tagMap: the AMI's own tags
    images.create_tags(ami, {"keep": "yes"})
    assert _held(ami, "local", {"tagMap": {"keep": "yes"}}) == (("exclusionRules.amis.tagMap", "keep=yes"), "none")
    assert _held(ami, "local", {"tagMap": {"keep": "no"}}) == (None, "delete")
    # lastLaunched: never launched is not protected; a real launch (then terminated, so not in use) is
    recent = {"lastLaunched": {"value": 7, "unit": "DAYS"}}
    assert _held(ami, "local", recent) == (None, "delete")
    launched = instances.run_instance(ami)
    instances.terminate_instance(launched.id)
    assert images.describe_image(ami, "local")["LastLaunchedTime"]
    assert _held(ami, "local", recent) == (("exclusionRules.amis.lastLaunched", "7 days"), "none")


def _policy_body(name: str, amis: dict[str, object] | None = None) -> str:
    detail: dict[str, object] = {
        "action": {"type": "DELETE", "includeResources": {"amis": True, "snapshots": True}},
        "filter": {"type": "AGE", "value": 1, "unit": "DAYS"},
    }
    if amis:
        detail["exclusionRules"] = {"amis": amis}
    return json.dumps({
        "name": name, "executionRole": "arn:aws:iam::123456789012:role/lifecycle", "resourceType": "AMI_IMAGE",
        "policyDetails": [detail], "resourceSelection": {"recipes": [{"name": "web", "semanticVersion": "1.x.x"}]},
    })


def _snapshots(ami: str, region: str, account: str) -> list[str]:
    found = images.describe_image(ami, region, account=account)
    return [m["Ebs"]["SnapshotId"] for m in found["BlockDeviceMappings"] if "Ebs" in m]


@needs_root
def test_a_policy_acts_on_its_accounts_copies_only(kiln, parent_ami: str) -> None:  # noqa: F811
    from kiln.store.api import describe_images, list_snapshots

    make_world()
    built = build(make_build_inputs(parent_ami, [
        {"region": "local", "amiDistributionConfiguration": {"targetAccountIds": [CONSUMER]}},
        {"region": "us-east-1", "amiDistributionConfiguration": {"targetAccountIds": [CONSUMER]}},
    ]))
    by = {(a["region"], a["accountId"]): a["image"] for a in built["outputResources"]["amis"]}
    later = (utcnow() + timedelta(days=10)).isoformat()

    # A policy keeping what is in us-east-1: the preview names account, region and the exclusion per AMI.
    body = _policy_body("east-stays", {"regions": ["us-east-1"]})
    code, out, err = kiln("lifecycle", "create", "--cli-input-json", body)
    assert code == 0, err
    code, out, err = kiln("lifecycle", "preview", "east-stays", "--as-of", later, "--output", "json")
    assert code == 0, err
    rows = {r["resourceId"]: r for r in json.loads(out)["resources"]}
    assert set(rows) >= {built["arn"], by["local", DEFAULT_ACCOUNT], by["us-east-1", DEFAULT_ACCOUNT]}
    assert by["local", CONSUMER] not in rows and by["us-east-1", CONSUMER] not in rows  # never another account's
    east = rows[by["us-east-1", DEFAULT_ACCOUNT]]
    assert (east["account"], east["region"], east["action"]) == (DEFAULT_ACCOUNT, "us-east-1", "none")
    assert east["exclusion"] == {"rule": "exclusionRules.amis.regions", "value": "us-east-1"}
    home = rows[by["local", DEFAULT_ACCOUNT]]
    assert (home["account"], home["region"], home["action"], home["exclusion"]) == (
        DEFAULT_ACCOUNT, "local", "delete", None)
    assert rows[built["arn"]]["action"] == "none"  # an AMI stays, so the image does
    code, text, err = kiln("lifecycle", "preview", "east-stays", "--as-of", later)
    assert code == 0, err
    line = next(row for row in text.splitlines() if row.strip().startswith(by["us-east-1", DEFAULT_ACCOUNT]))
    assert line.split()[:6] == [by["us-east-1", DEFAULT_ACCOUNT], "ami", DEFAULT_ACCOUNT, "us-east-1", "none",
                                "exclusionRules.amis.regions=us-east-1"]
    assert built["arn"] in text  # ids and ARNs never cut

    # The consumer's own policy in its account sees none of this account's images.
    code, out, err = kiln("lifecycle", "create", "--account", CONSUMER, "--cli-input-json", _policy_body("theirs"))
    assert code == 0, err
    assert out.strip() == f"arn:aws:imagebuilder:local:{CONSUMER}:lifecycle-policy/theirs"
    code, out, err = kiln("lifecycle", "preview", "theirs", "--account", CONSUMER, "--as-of", later, "--output", "json")
    assert code == 0, err
    assert json.loads(out)["resources"] == []

    # Deleting: this account's AMIs and their snapshots go, in both regions; the consumer's copies stay whole.
    regions = ("local", "us-east-1")
    theirs = {region: _snapshots(by[region, CONSUMER], region, CONSUMER) for region in regions}
    mine = {region: _snapshots(by[region, DEFAULT_ACCOUNT], region, DEFAULT_ACCOUNT) for region in regions}
    code, _, err = kiln("lifecycle", "create", "--cli-input-json", _policy_body("all-go"))
    assert code == 0, err
    code, out, err = kiln("lifecycle", "run", "all-go", "--as-of", later)
    assert code == 0 and "SUCCESS" in out, (out, err)
    for region in regions:
        assert mine[region] and theirs[region]
        left = {snap.id for snap in list_snapshots(region=region)}
        assert not left & set(mine[region])
        assert set(theirs[region]) <= left
        assert images.describe_image(by[region, CONSUMER], region, account=CONSUMER)["State"] == "available"
        registered = {info.id for info in describe_images(region, include_deprecated=True, include_disabled=True)}
        assert by[region, DEFAULT_ACCOUNT] not in registered and by[region, CONSUMER] in registered


def test_refusals_name_account_region_and_policy_and_change_nothing(kiln) -> None:
    accounts.create_account("peer", account_id=PEER)
    create_region("us-east-1")
    body = _policy_body("east-stays", {"regions": ["us-east-1", "eu-west-9"]})
    code, _, err = kiln("lifecycle", "create", "--cli-input-json", body)
    assert code != 0 and "Traceback" not in err
    assert "policyDetails[0].exclusionRules.amis.regions[1]" in err and "eu-west-9" in err
    assert f"east-stays in account {DEFAULT_ACCOUNT}, region local" in err
    code, _, err = kiln("lifecycle", "create", "--region", "ap-south-9", "--cli-input-json", _policy_body("south"))
    assert code != 0 and f"south in account {DEFAULT_ACCOUNT}: region ap-south-9 does not exist" in err
    code, out, _ = kiln("lifecycle", "list", "--output", "json")
    assert json.loads(out)["lifecyclePolicySummaryList"] == []  # nothing was made

    code, out, err = kiln("lifecycle", "create", "--region", "us-east-1", "--cli-input-json", _policy_body("east"))
    assert code == 0, err
    arn = out.strip()
    assert arn == f"arn:aws:imagebuilder:us-east-1:{DEFAULT_ACCOUNT}:lifecycle-policy/east"
    code, _, err = kiln("lifecycle", "get", "east")  # not in the default region
    assert code != 0 and f"not found in account {DEFAULT_ACCOUNT}, region local" in err
    for verb in ("get", "preview", "run", "delete"):
        code, _, err = kiln("lifecycle", verb, arn, "--account", PEER)
        assert code != 0 and f"{arn} not found in account {PEER}, region us-east-1" in err, (verb, err)
    code, _, err = kiln("lifecycle", "create", "--region", "us-east-1", "--cli-input-json", _policy_body("east"))
    assert code != 0 and f"already exists in account {DEFAULT_ACCOUNT}, region us-east-1" in err
    code, out, err = kiln("lifecycle", "get", "east", "--region", "us-east-1", "--output", "json")
    assert code == 0 and json.loads(out)["lifecyclePolicy"]["arn"] == arn
    code, out, err = kiln("lifecycle", "run", "east", "--region", "us-east-1", "--output", "json")
    assert code == 0, err
    execution = json.loads(out)["lifecycleExecution"]["lifecycleExecutionId"]
    code, _, err = kiln("lifecycle", "execution-resources", execution, "--account", PEER, "--region", "us-east-1")
    assert code != 0 and f"{execution} not found in account {PEER}, region us-east-1" in err
    code, _, err = kiln("lifecycle", "cancel", execution)  # not in the default region
    assert code == 1 and f"{execution} not found in account {DEFAULT_ACCOUNT}, region local" in err
    code, _, err = kiln("lifecycle", "cancel", execution, "--region", "us-east-1")
    assert code != 0 and f"{arn} in account {DEFAULT_ACCOUNT}, region us-east-1 already ended" in err


def test_the_api_refuses_another_accounts_policy_with_image_builders_code() -> None:
    from kiln.errors import NotFound
    from kiln.services.lifecycle import policies

    arn = policies.create_policy(json.loads(_policy_body("mine")))
    with pytest.raises(NotFound) as refused:
        policies.get_policy(arn, caller=PEER)
    assert refused.value.code == "ResourceNotFoundException"
    assert f"not found in account {PEER}, region local" in str(refused.value)
    assert policies.get_policy(arn, caller=DEFAULT_ACCOUNT).arn == arn


def test_a_step_on_another_accounts_ami_is_refused_and_keeps_the_image(tmp_path: Path) -> None:
    """The store's source never hands a policy another account's copy; should one (here a FAKE source:
    a fault the real one cannot produce) do so, the run refuses that step and keeps the image."""
    from kiln.services.lifecycle import policies
    from kiln.services.lifecycle.runner import run

    world = FakeWorld(tmp_path / "world.json")
    world.save_images([image(1, days_old=90, amis=[
        ami("ami-00000000000000011", snapshots={"snap-11": 10}),
        ami("ami-00000000000000012", region="us-east-1", account=PEER, snapshots={"snap-12": 10}),
    ])])
    log = tmp_path / "actions.log"
    arn = policies.create_policy(body(rule("DELETE", "AGE", 30, "DAYS", snapshots=True)))
    execution = run(arn, as_of=AS_OF, source=FakeCandidateSource(world), actions=FakeActions(world, log))
    done = [line for line in log.read_text().splitlines() if not line.startswith("noop")]
    assert done == ["deregister_ami ami-00000000000000011", "delete_snapshot snap-11"]
    [top] = policies.list_execution_resources(execution.lifecycleExecutionId)
    assert top.state.status.value == "SKIPPED" and "ami-00000000000000012" in top.state.reason
    amis = {a.resourceId: a for a in policies.list_execution_resources(execution.lifecycleExecutionId, top.resourceId)}
    theirs = amis["ami-00000000000000012"]
    assert (theirs.accountId, theirs.region, theirs.state.status.value) == (PEER, "us-east-1", "SKIPPED")
    assert f"account {PEER}, region us-east-1" in theirs.state.reason
    assert [s.state.status.value for s in theirs.snapshots or []] == ["SKIPPED"]
