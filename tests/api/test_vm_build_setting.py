"""The infrastructure configuration setting that runs builds and tests in VMs (``resourceTags``
``kiln:vm: "true"``): accepted over the wire by boto3 (botocore's own shape validation), by
``kiln apply`` and the CLI, planned into the build; any other value than true/false is one clear error
naming the field, and nothing is created. (The VM builds themselves: tests/vm_builds.)"""

from __future__ import annotations

import json

import pytest

from kiln.errors import InvalidInput

BAD = {"name": "vm-infra", "resourceTags": {"kiln:vm": "yes"}}


def test_boto3_sets_it_and_the_build_plan_follows(server) -> None:  # type: ignore[no-untyped-def]
    from kiln.services.builds.plan import BuildPlan
    from kiln.services.configurations.vm_builds import builds_in_vms

    client = server.client()
    arn = client.create_infrastructure_configuration(
        name="vm-infra", instanceProfileName="kiln", resourceTags={"kiln:vm": "true"})["infrastructureConfigurationArn"]
    body = client.get_infrastructure_configuration(infrastructureConfigurationArn=arn)["infrastructureConfiguration"]
    assert body["resourceTags"] == {"kiln:vm": "true"} and builds_in_vms(body)
    assert not builds_in_vms({"resourceTags": {"kiln:vm": "false"}}) and not builds_in_vms({})
    assert "vm" in BuildPlan.__dataclass_fields__
    with pytest.raises(client.exceptions.InvalidParameterValueException) as refused:
        client.create_infrastructure_configuration(name="other", instanceProfileName="kiln",
                                                   resourceTags={"kiln:vm": "yes"})
    assert "resourceTags.kiln:vm" in str(refused.value)
    listed = client.list_infrastructure_configurations()["infrastructureConfigurationSummaryList"]
    assert [entry["name"] for entry in listed] == ["vm-infra"]


def test_apply_and_the_cli_refuse_a_bad_value(kiln, kiln_home, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kiln.services.apply import apply_text
    from kiln.services.configurations.infrastructure import list_infrastructure_configurations

    with pytest.raises(InvalidInput) as refused:
        apply_text("kind: InfrastructureConfiguration\nname: vm-infra\nresourceTags:\n  kiln:vm: 'yes'\n")
    assert "resourceTags.kiln:vm" in str(refused.value) or refused.value.location.endswith("resourceTags.kiln:vm")
    result = kiln("infrastructure", "create", "--cli-input-json", json.dumps(BAD))
    assert result.exit_code != 0 and "resourceTags.kiln:vm" in result.stderr and "Traceback" not in result.stderr
    assert list_infrastructure_configurations()["infrastructureConfigurationSummaryList"] == []
    good = kiln("infrastructure", "create", "--cli-input-json",
                json.dumps({**BAD, "resourceTags": {"kiln:vm": "true"}}), "--output", "json")
    assert good.exit_code == 0, good.stderr
