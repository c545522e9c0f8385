from __future__ import annotations

import pytest

from kiln.errors import AlreadyExists, InUse, InvalidInput, NotFound
from kiln.model.arn import Arn
from kiln.services.common.references import _finders, register_reference_finder
from kiln.services.configurations.distribution import (
    create_distribution_configuration,
    delete_distribution_configuration,
    get_distribution_configuration,
    list_distribution_configurations,
    update_distribution_configuration,
)
from kiln.services.configurations.infrastructure import (
    create_infrastructure_configuration,
    delete_infrastructure_configuration,
    get_infrastructure_configuration,
    list_infrastructure_configurations,
    update_infrastructure_configuration,
)

INFRA = "arn:aws:imagebuilder:local:123456789012:infrastructure-configuration"
DIST = "arn:aws:imagebuilder:local:123456789012:distribution-configuration"


def test_infrastructure_life_cycle() -> None:
    created = create_infrastructure_configuration(
        {
            "name": "Build Infra",
            "terminateInstanceOnFailure": False,
            "resourceTags": {"a": "b"},
            "tags": {"t": "1"},
        }
    )
    arn = created["infrastructureConfigurationArn"]
    assert arn == f"{INFRA}/build-infra"
    got = get_infrastructure_configuration(arn)["infrastructureConfiguration"]
    assert got["terminateInstanceOnFailure"] is False
    assert got["instanceProfileName"] == "EC2InstanceProfileForImageBuilder"
    assert "dateUpdated" not in got
    with pytest.raises(AlreadyExists):
        create_infrastructure_configuration({"name": "Build Infra"})

    update_infrastructure_configuration(
        {
            "infrastructureConfigurationArn": arn,
            "instanceTypes": ["t3.small"],
            "instanceProfileName": "builder",
        }
    )
    got = get_infrastructure_configuration(arn)["infrastructureConfiguration"]
    assert got["instanceTypes"] == ["t3.small"]
    assert got["instanceProfileName"] == "builder"
    assert "terminateInstanceOnFailure" not in got  # PUT semantics: omitted fields are cleared
    assert got["tags"] == {"t": "1"}  # tags are not part of Update
    assert got["name"] == "Build Infra"
    assert got["dateUpdated"].endswith("Z")
    summaries = list_infrastructure_configurations()["infrastructureConfigurationSummaryList"]
    assert [entry["arn"] for entry in summaries] == [arn]

    with pytest.raises(InvalidInput):
        update_infrastructure_configuration({"infrastructureConfigurationArn": arn, "name": "rename"})
    assert delete_infrastructure_configuration(arn)["infrastructureConfigurationArn"] == arn
    with pytest.raises(NotFound):
        get_infrastructure_configuration(arn)


def test_distribution_life_cycle() -> None:
    from kiln.services.accounts.regions import create_region

    create_region("eu-west-1")  # a configuration names only regions that exist
    body = {
        "name": "ship",
        "distributions": [
            {
                "region": "local",
                "amiDistributionConfiguration": {
                    "name": "demo-{{ imagebuilder:buildDate }}",
                    "amiTags": {"app": "demo"},
                    "targetAccountIds": ["210987654321"],
                    "launchPermission": {"userGroups": ["all"]},
                },
                "launchTemplateConfigurations": [
                    {"launchTemplateId": "lt-0123456789abcdef0", "setDefaultVersion": True}
                ],
            }
        ],
    }
    arn = create_distribution_configuration(body)["distributionConfigurationArn"]
    got = get_distribution_configuration(arn)["distributionConfiguration"]
    assert got["distributions"] == body["distributions"]
    assert got["timeoutMinutes"] == 720
    update_distribution_configuration(
        {"distributionConfigurationArn": arn, "distributions": [{"region": "local"}, {"region": "eu-west-1"}]}
    )
    summaries = list_distribution_configurations()["distributionConfigurationSummaryList"]
    assert summaries[0]["regions"] == ["local", "eu-west-1"]
    delete_distribution_configuration(arn)
    assert list_distribution_configurations()["distributionConfigurationSummaryList"] == []


def test_bad_account_id_is_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        create_distribution_configuration(
            {
                "name": "ship",
                "distributions": [
                    {"region": "local", "amiDistributionConfiguration": {"targetAccountIds": ["12345"]}}
                ],
            }
        )
    assert "distributions[0].amiDistributionConfiguration.targetAccountIds[0]" in caught.value.location


def test_reference_registry_blocks_delete(monkeypatch: pytest.MonkeyPatch) -> None:
    arn = create_infrastructure_configuration({"name": "infra"})["infrastructureConfigurationArn"]
    pipeline = "arn:aws:imagebuilder:local:123456789012:image-pipeline/nightly"

    def pipelines_using(db: object, target: Arn) -> list[str]:
        return [pipeline] if str(target) == arn else []

    monkeypatch.setitem(_finders, "infrastructure-configuration", [])
    register_reference_finder("infrastructure-configuration", pipelines_using)
    with pytest.raises(InUse) as caught:
        delete_infrastructure_configuration(arn)
    assert pipeline in caught.value.message
    assert get_infrastructure_configuration(arn)["infrastructureConfiguration"]["arn"] == arn
