"""A build's network policy comes from its infrastructure configuration and the operator's mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.errors import InvalidInput
from kiln.services.configurations.network_policy import network_policy


def test_no_subnet_means_no_network() -> None:
    assert not network_policy({"instanceProfileName": "builder"}, "none").reachable


def test_host_local_addresses_only_when_the_configuration_allows_them() -> None:
    assert not network_policy({}, "host").host_local
    assert network_policy({"tags": {"kiln:HostLocalNetwork": "allow"}}, "host").host_local


def test_instance_profile_maps_to_the_operators_profile(kiln_home: Path) -> None:
    assert network_policy({"instanceProfileName": "builder"}, "host").aws_profile is None
    (kiln_home / "instance-profiles.yaml").write_text("builder: ci-builds\n")
    policy = network_policy({"instanceProfileName": "builder"}, "host")
    assert (policy.aws_profile, policy.host_credentials) == ("ci-builds", False)
    assert network_policy({"instanceProfileName": "other"}, "host").aws_profile is None


def test_a_bad_mapping_file_is_one_clear_error(kiln_home: Path) -> None:
    (kiln_home / "instance-profiles.yaml").write_text("- builder\n")
    with pytest.raises(InvalidInput) as caught:
        network_policy({"instanceProfileName": "builder"}, "host")
    assert caught.value.location == str(kiln_home / "instance-profiles.yaml")
