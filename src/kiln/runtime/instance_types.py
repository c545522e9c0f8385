"""EC2 instance types kiln understands, with EC2's vCPU count and memory (GiB) for each."""

from __future__ import annotations

from dataclasses import dataclass

from kiln.errors import InvalidInput

DEFAULT_INSTANCE_TYPE = "t3.micro"


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * 1024 * 1024


def _gib(name: str, vcpus: int, gib: float) -> InstanceType:
    return InstanceType(name, vcpus, int(gib * 1024))


# Published EC2 sizes (vCPUs, GiB). Only x86_64 families: kiln runs images of the host's architecture.
INSTANCE_TYPES: dict[str, InstanceType] = {
    t.name: t
    for t in (
        _gib("t2.nano", 1, 0.5),
        _gib("t2.micro", 1, 1),
        _gib("t2.small", 1, 2),
        _gib("t2.medium", 2, 4),
        _gib("t2.large", 2, 8),
        _gib("t3.nano", 2, 0.5),
        _gib("t3.micro", 2, 1),
        _gib("t3.small", 2, 2),
        _gib("t3.medium", 2, 4),
        _gib("t3.large", 2, 8),
        _gib("t3.xlarge", 4, 16),
        _gib("t3.2xlarge", 8, 32),
        _gib("m5.large", 2, 8),
        _gib("m5.xlarge", 4, 16),
        _gib("m5.2xlarge", 8, 32),
        _gib("m5.4xlarge", 16, 64),
        _gib("m6i.large", 2, 8),
        _gib("m6i.xlarge", 4, 16),
        _gib("m7i.large", 2, 8),
        _gib("c5.large", 2, 4),
        _gib("c5.xlarge", 4, 8),
        _gib("c5.2xlarge", 8, 16),
        _gib("c6i.large", 2, 4),
        _gib("r5.large", 2, 16),
        _gib("r5.xlarge", 4, 32),
    )
}


def instance_type(name: str) -> InstanceType:
    try:
        return INSTANCE_TYPES[name]
    except KeyError:
        raise InvalidInput(
            f"unknown instance type {name!r}",
            location="InstanceType",
            hint="one of: " + ", ".join(INSTANCE_TYPES),
        ) from None
