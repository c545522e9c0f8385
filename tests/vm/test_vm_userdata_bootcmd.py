"""A user's cloud-config with a ``bootcmd`` of its own, which would replace kiln's (vendor-data's) entry
starting the exec agent: the seed's user-data is the user's config with kiln's entry appended to its
``bootcmd``, everything else of it kept; other user data is handed over as given, and the metadata
endpoint serves the user data as given. Booted for real (the bootable Debian image, KVM or TCG, never
skipped): the user's bootcmd runs and ``kiln instance exec --via serial`` reaches kiln's agent."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml
from tests.vm_builds import test_vm_builds as vm_builds
from tests.vm_builds.test_vm_builds import VmHome

from kiln.runtime import vm_seed

# the bootable image's fixtures of the VM build tests
vm_home, in_vm_home = vm_builds.vm_home, vm_builds.in_vm_home

BOOT_SECONDS = 1200
USER_DATA = """#cloud-config
# the user's own early commands
bootcmd:
  - echo user-bootcmd-ran > /run/user-bootcmd
  - [sh, -c, "echo second-entry >> /run/user-bootcmd"]
write_files:
  - path: /etc/kiln-user-file
    content: kept
"""


def test_a_users_bootcmd_gets_kilns_agent_entry_appended() -> None:
    merged = yaml.safe_load(vm_seed.seed_user_data(USER_DATA.encode()))
    user = yaml.safe_load(USER_DATA)
    assert merged["bootcmd"] == [*user["bootcmd"], *vm_seed.agent_bootcmd()]
    assert merged["write_files"] == user["write_files"], "the rest of the user's config is kept"
    assert vm_seed.seed_user_data(USER_DATA.encode()).startswith(b"#cloud-config\n")


def test_other_user_data_is_handed_over_as_given() -> None:
    for given in (b"#!/bin/sh\necho hi\n", b"#cloud-config\nruncmd: [[touch, /x]]\n",
                  b"#cloud-config\nbootcmd: [unclosed\n", b"#cloud-config\nbootcmd: not-a-list\n"):
        assert vm_seed.seed_user_data(given) == given, given
    assert vm_seed.seed_user_data(None) == vm_seed.EMPTY_USER_DATA


@pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")
@pytest.mark.network
@pytest.mark.slow
def test_exec_via_serial_works_with_a_users_own_bootcmd(in_vm_home: VmHome, kiln, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "user-data").write_text(USER_DATA)
    launched = kiln("instance", "run", in_vm_home.parent, "--vm", "--user-data", f"file://{tmp_path / 'user-data'}",
                    "--output", "json")
    assert launched.exit_code == 0, launched.stderr
    instance_id = json.loads(launched.stdout)["InstanceId"]
    try:
        seed = in_vm_home.home / "instances" / instance_id / "seed.img"
        assert yaml.safe_load(vm_seed.read_seed(seed, "user-data"))["bootcmd"][-1] == vm_seed.agent_bootcmd()[0]
        metadata = json.loads((in_vm_home.home / "instances" / instance_id / "metadata.json").read_text())
        assert metadata["user_data"] == USER_DATA, "the metadata endpoint serves the user data as given"
        deadline = time.monotonic() + BOOT_SECONDS
        while True:  # no SSH here: kiln's agent answers once the guest's bootcmd started it
            done = kiln("instance", "exec", instance_id, "--via", "serial", "--timeout", "60", "--",
                        "cat", "/run/user-bootcmd", "/etc/kiln-user-file")
            if done.exit_code == 0:
                break
            assert time.monotonic() < deadline, f"no agent on the serial port within {BOOT_SECONDS} s: {done.stderr}"
            time.sleep(5)
        assert done.stdout.splitlines()[:2] == ["user-bootcmd-ran", "second-entry"], done.stdout
    finally:
        assert kiln("instance", "terminate", instance_id, "--force").exit_code == 0
