"""Lifecycle policies over the Image Builder API belong to the caller's account and region; another
account's policy is refused with Image Builder's code, naming the caller's account and the region."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from kiln.home import DEFAULT_ACCOUNT

POLICY = {
    "name": "retire-old", "executionRole": "arn:aws:iam::123456789012:role/lifecycle", "resourceType": "AMI_IMAGE",
    "policyDetails": [{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 2}}],
    "resourceSelection": {"recipes": [{"name": "web", "semanticVersion": "1.x.x"}]}, "clientToken": "t-1",
}


def _error(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error.get("Message", "")


def test_a_policy_is_the_callers_in_the_callers_region(server) -> None:  # type: ignore[no-untyped-def]
    from kiln.services.accounts.accounts import create_access_key, create_account
    from kiln.services.accounts.regions import create_region

    create_region("eu-west-1")
    peer = create_account("peer")["Id"]
    mine = server.client("imagebuilder", region="eu-west-1")
    arn = mine.create_lifecycle_policy(**POLICY)["lifecyclePolicyArn"]
    assert arn == f"arn:aws:imagebuilder:eu-west-1:{DEFAULT_ACCOUNT}:lifecycle-policy/retire-old"
    assert mine.get_lifecycle_policy(lifecyclePolicyArn=arn)["lifecyclePolicy"]["arn"] == arn

    theirs = server.client("imagebuilder", key=create_access_key(peer), region="eu-west-1")
    code, message = _error(theirs.get_lifecycle_policy, lifecyclePolicyArn=arn)
    assert code == "ResourceNotFoundException" and f"in account {peer}, region eu-west-1" in message
    code, message = _error(theirs.delete_lifecycle_policy, lifecyclePolicyArn=arn)
    assert code == "ResourceNotFoundException" and arn in message
    assert mine.get_lifecycle_policy(lifecyclePolicyArn=arn)["lifecyclePolicy"]["name"] == "retire-old"  # unchanged

    code, message = _error(mine.create_lifecycle_policy, **{**POLICY, "clientToken": "t-2"})
    assert code == "ResourceAlreadyExistsException"
    assert f"in account {DEFAULT_ACCOUNT}, region eu-west-1" in message
    bad = {**POLICY, "name": "bad-region", "clientToken": "t-3", "policyDetails": [{
        **POLICY["policyDetails"][0], "exclusionRules": {"amis": {"regions": ["ap-south-9"]}}}]}
    code, message = _error(mine.create_lifecycle_policy, **bad)
    assert code == "InvalidParameterValueException" and "ap-south-9" in message


def test_policies_and_their_executions_are_listed_for_the_caller(server) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from kiln.services.accounts.accounts import create_access_key, create_account
    from kiln.services.lifecycle import runner

    mine = server.client("imagebuilder")
    arn = mine.create_lifecycle_policy(**POLICY)["lifecyclePolicyArn"]
    mine.create_lifecycle_policy(**{**POLICY, "name": "paused", "status": "DISABLED", "clientToken": "t-4"})
    names = [p["name"] for p in mine.list_lifecycle_policies()["lifecyclePolicySummaryList"]]
    assert names == ["paused", "retire-old"]
    enabled = mine.list_lifecycle_policies(filters=[{"name": "status", "values": ["ENABLED"]}])
    assert [p["arn"] for p in enabled["lifecyclePolicySummaryList"]] == [arn]
    code, _ = _error(mine.list_lifecycle_policies, filters=[{"name": "owner", "values": ["x"]}])
    assert code == "InvalidParameterValueException"

    execution = runner.run(arn, as_of=datetime.now(UTC)).lifecycleExecutionId
    listed = mine.list_lifecycle_executions(resourceArn=arn)["lifecycleExecutions"]
    assert [e["lifecycleExecutionId"] for e in listed] == [execution]
    got = mine.get_lifecycle_execution(lifecycleExecutionId=execution)["lifecycleExecution"]
    assert got["state"]["status"] == "SUCCESS" and got["lifecyclePolicyArn"] == arn
    resources = mine.list_lifecycle_execution_resources(lifecycleExecutionId=execution)
    assert resources["lifecycleExecutionState"]["status"] == "SUCCESS" and resources["resources"] == []
    with pytest.raises(ClientError):  # it already ended: nothing to cancel, nothing changed
        mine.cancel_lifecycle_execution(lifecycleExecutionId=execution, clientToken="c-1")
    again = mine.get_lifecycle_execution(lifecycleExecutionId=execution)["lifecycleExecution"]
    assert again["state"]["status"] == "SUCCESS"

    theirs = server.client("imagebuilder", key=create_access_key(create_account("peer")["Id"]))
    assert theirs.list_lifecycle_policies()["lifecyclePolicySummaryList"] == []
    assert _error(theirs.list_lifecycle_executions, resourceArn=arn)[0] == "ResourceNotFoundException"
    assert _error(theirs.get_lifecycle_execution, lifecycleExecutionId=execution)[0] == "ResourceNotFoundException"
