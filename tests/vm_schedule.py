"""Which tests start first: the ones that boot VMs under TCG take minutes each, so they start at once and
the rest of the suite runs beside them, instead of two workers waiting on VM boots at the end.

``--dist load`` (pyproject) hands tests to the workers two at a time, in this order. With two workers the
first module below (its first test builds the session's shared VM image, tests/vm_support.py) goes to one
worker and the second (which builds an image of its own in a module fixture, for both its tests) to the
other; by the time a worker is free for the third, the shared image is made. The rest keep the order
conftest gives them (network, then slow, first)."""

from __future__ import annotations

import pytest

FIRST = ("tests/vm/test_vm_boot.py", "tests/boot/test_boot_qemu.py", "tests/vm_builds/test_vm_builds.py",
         "tests/vm_builds/test_vm_build_kill.py", "tests/vm/test_vm_userdata_bootcmd.py",
         "tests/vm_builds/test_vm_build_s3.py", "tests/vm/test_vm_netns.py")


@pytest.hookimpl(trylast=True)  # after conftest's order, which this one keeps for everything else
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::")[0]
        return FIRST.index(module) if module in FIRST else len(FIRST)

    items.sort(key=rank)
