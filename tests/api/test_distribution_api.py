"""Distribution configurations over the Image Builder API name only regions that exist."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from tests.api.conftest import Server


def test_an_unknown_region_is_refused_with_image_builders_code(server: Server) -> None:
    client = server.client()
    with pytest.raises(ClientError) as refused:
        client.create_distribution_configuration(name="far-away", distributions=[{"region": "ap-south-2"}])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "ap-south-2" in refused.value.response["Error"]["Message"]
    assert client.list_distribution_configurations()["distributionConfigurationSummaryList"] == []
