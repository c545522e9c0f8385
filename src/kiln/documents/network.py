"""What the network actions (WebDownload, S3Download, S3Upload) may reach, and with which credentials.

These actions run on the host side of an instance, so the host enforces the instance's network for
them: an instance without a network reaches nothing; an instance with one never reaches the host's
own loopback, link-local addresses (``169.254.0.0/16``, ``fe80::/10``) or the instance metadata
addresses unless its configuration allows host-local addresses. Every address a name resolves to is
checked, and the connection goes to the checked address (no second lookup to rebind). Commands
inside the instance meet the same policy in the instance's own network namespace
(``kiln.runtime.netns``).

Credentials follow the same rule: the host executor (``kiln component run``, as ``awstoe run``) uses
the host's AWS credential chain; an instance uses only the named profile its instance profile maps
to, and without one the S3 actions send unsigned (anonymous) requests — never the host's identity.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
# What an instance's own network namespace refuses by route unless the policy allows host-local
# addresses (kiln.runtime.netns): its loopback is its own, the NAT refuses the host's, and it has no
# IPv6 route, so IPv4 link-local (with the metadata address 169.254.169.254) is what is left.
INSTANCE_REFUSED_NETWORKS = (ipaddress.ip_network("169.254.0.0/16"),)


@dataclass(frozen=True)
class NetworkPolicy:
    """``reachable``: any network at all; ``host_local``: the host's loopback, link-local and metadata
    addresses too. ``aws_profile``: the named AWS profile for S3 (None: see ``host_credentials``);
    ``host_credentials``: use the host's default credential chain (only the host executor does)."""

    reachable: bool
    host_local: bool = False
    aws_profile: str | None = None
    host_credentials: bool = False


HOST = NetworkPolicy(reachable=True, host_local=True, host_credentials=True)
NO_NETWORK = NetworkPolicy(reachable=False)


class NetworkRefused(Exception):
    """The policy forbids the address (or any network); the message names the address."""


def host_local(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address in METADATA_ADDRESSES
    )


def allowed_addresses(policy: NetworkPolicy, host: str, port: int) -> list[tuple[int, int, int, str, tuple]]:
    """``getaddrinfo`` results for ``host:port`` that the policy allows; NetworkRefused if none is."""
    if not policy.reachable:
        raise NetworkRefused(f"{host}: the instance has no network (its infrastructure configuration says "
                             "subnetId: none)")
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OSError(f"cannot resolve {host}: {error.strerror}") from None
    if policy.host_local:
        return list(found)
    allowed = [entry for entry in found if not host_local(ipaddress.ip_address(entry[4][0].split("%")[0]))]
    if not allowed:
        addresses = ", ".join(sorted({entry[4][0] for entry in found}))
        raise NetworkRefused(f"{host} ({addresses}) is a host-local address (loopback, link-local or instance "
                             "metadata), which build instances may not reach")
    return allowed


def connect(policy: NetworkPolicy, host: str, port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the first allowed address of ``host`` that answers."""
    last: OSError | None = None
    for family, kind, proto, _, address in allowed_addresses(policy, host, port):
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not None:
                sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as error:
            sock.close()
            last = error
    raise last or OSError(f"cannot connect to {host}:{port}")


def policy_of(executor: object) -> NetworkPolicy:
    """The executor's policy; an executor that declares none gets no network (the safe default)."""
    policy = getattr(executor, "network", None)
    return policy if isinstance(policy, NetworkPolicy) else NO_NETWORK
