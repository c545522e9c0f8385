from __future__ import annotations

from pathlib import Path

import pytest

from kiln.runtime import cgroups, instances
from kiln.runtime.exec import exec_in
from kiln.runtime.instance_types import INSTANCE_TYPES, instance_type


def test_instance_types_carry_ec2_sizes() -> None:
    assert (instance_type("t3.micro").vcpus, instance_type("t3.micro").memory_mib) == (2, 1024)
    assert (instance_type("m5.large").vcpus, instance_type("m5.large").memory_bytes) == (2, 8 << 30)
    assert instance_type("t3.nano").memory_mib == 512
    assert all(t.vcpus >= 1 and t.memory_mib >= 512 for t in INSTANCE_TYPES.values())


def test_limits_follow_the_instance_type_and_go_with_the_instance(busybox_rootfs: Path) -> None:
    kind = cgroups.backend()
    if kind is None:
        pytest.skip("no writable cgroup cpu+memory controllers on this host: limits are only recorded")
    instance = instances.launch([busybox_rootfs], instance_type_name="t3.nano")
    try:
        assert instance.cgroups and instance.describe()["Kiln"]["LimitsEnforced"] is True
        assert instance.init.pid in cgroups.members(instance.cgroups)
        inside = exec_in(instance.id, ["cat", "/proc/self/cgroup"]).stdout
        assert instance.id in inside  # exec'd commands run inside the limits too
        values = {}
        for group in instance.cgroups:
            for name in ("memory.max", "cpu.max", "memory.limit_in_bytes", "cpu.cfs_quota_us"):
                if (group / name).exists():
                    values[name] = (group / name).read_text().strip()
        if kind == "v2":
            assert values["memory.max"] == str(512 << 20)
            assert values["cpu.max"] == "200000 100000"
        else:
            assert values["memory.limit_in_bytes"] == str(512 << 20)
            assert values["cpu.cfs_quota_us"] == "200000"
    finally:
        instances.terminate(instance.id)
    assert not any(group.exists() for group in instance.cgroups)


def test_join_argv_leaves_commands_alone_without_groups() -> None:
    assert cgroups.join_argv([], ["true"]) == ["true"]
    wrapped = cgroups.join_argv(["/sys/fs/cgroup/x"], ["true"])
    assert wrapped[-2:] == ["--", "true"] and "/sys/fs/cgroup/x/cgroup.procs" in wrapped


def test_a_process_over_the_memory_limit_is_killed_and_the_instance_lives_on(busybox_rootfs: Path) -> None:
    if cgroups.backend() is None:
        pytest.skip("no writable cgroup cpu+memory controllers on this host: limits are only recorded")
    instance = instances.launch([busybox_rootfs], instance_type_name="t3.nano")  # 512 MiB
    try:
        # busybox sort holds its whole input (one 700 MB line) in memory.
        hog = exec_in(instance.id, ["sh", "-c", "head -c 700m /dev/zero | sort > /dev/null"], timeout=120)
        assert hog.exit_code == 137 and not hog.timed_out
        assert exec_in(instance.id, ["echo", "alive"]).stdout == "alive\n"
    finally:
        instances.terminate(instance.id)
