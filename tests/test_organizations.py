"""The one organization/OU ARN pattern: botocore's, and anchored."""

from __future__ import annotations

import botocore.session
import pytest

from kiln.model.organizations import ORGANIZATION_ARN, ORGANIZATION_ARN_PATTERN, OU_ARN, OU_ARN_PATTERN


def test_patterns_are_botocores() -> None:
    model = botocore.session.get_session().get_service_model("imagebuilder")
    assert model.shape_for("OrganizationArn").metadata["pattern"] == ORGANIZATION_ARN_PATTERN
    assert model.shape_for("OrganizationalUnitArn").metadata["pattern"] + "$" == OU_ARN_PATTERN


@pytest.mark.parametrize(
    ("value", "organization", "unit"),
    [
        ("arn:aws:organizations::123456789012:organization/o-abcdefghij", True, False),
        ("arn:aws-cn:organizations::123456789012:organization/o-abcdefghij", True, False),
        ("arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-abcdefgh", False, True),
        ("arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-abcdefgh/extra", False, False),
        ("arn:aws:organizations::12345:organization/o-abcdefghij", False, False),
    ],
)
def test_patterns_match_as_aws_does(value: str, organization: bool, unit: bool) -> None:
    assert bool(ORGANIZATION_ARN.match(value)) is organization
    assert bool(OU_ARN.match(value)) is unit
