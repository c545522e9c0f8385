"""The network policy of a build's instances, from its infrastructure configuration.

- ``subnetId: none`` → no network at all (also for the host-side WebDownload and S3 actions).
- otherwise the network, but not the host's loopback, link-local or metadata addresses, unless the
  configuration's tags say ``kiln:HostLocalNetwork: allow``: for the host-side actions and for the
  commands in the instance alike (its network namespace is set up so: kiln.runtime.netns).
- ``instanceProfileName`` → the AWS named profile the operator maps it to in
  ``$KILN_HOME/instance-profiles.yaml`` (``NAME: PROFILE`` lines), which the S3 actions use; an
  unmapped or absent instance profile gives unsigned requests, never the host's credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kiln.documents.network import NetworkPolicy
from kiln.errors import InvalidInput
from kiln.home import kiln_home

HOST_LOCAL_TAG = "kiln:HostLocalNetwork"
PROFILES_FILE = "instance-profiles.yaml"


def profile_map() -> dict[str, str]:
    """The operator's instance profile → AWS profile mapping (empty without the file)."""
    import yaml

    path = kiln_home() / PROFILES_FILE
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as error:
        raise InvalidInput(f"not valid YAML: {error}", location=str(path)) from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise InvalidInput("must map instance profile names to AWS profile names (NAME: PROFILE)",
                           location=str(path))
    return data


def network_policy(infrastructure: Mapping[str, Any], network: str) -> NetworkPolicy:
    """``network`` is the instance network the build chose (``none`` or ``host``)."""
    if network == "none":
        return NetworkPolicy(reachable=False)
    tags = infrastructure.get("tags") or {}
    profile_name = infrastructure.get("instanceProfileName")
    return NetworkPolicy(
        reachable=True,
        host_local=str(tags.get(HOST_LOCAL_TAG, "")).lower() == "allow",
        aws_profile=profile_map().get(profile_name) if profile_name else None,
    )
