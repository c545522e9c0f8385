from __future__ import annotations

from pathlib import Path

import pytest

from kiln.documents.executor import Executor, parse_os_release
from kiln.ec2_errors import IncorrectInstanceState
from kiln.errors import InvalidInput
from kiln.runtime import instances
from kiln.runtime.executor import InstanceExecutor


def test_instance_executor_runs_inside_and_maps_paths_into_the_root(
    busybox_rootfs: Path, cleanup_instances
) -> None:
    instance = instances.launch([busybox_rootfs])
    cleanup_instances.append(instance.id)
    executor = InstanceExecutor(instance.id)
    assert isinstance(executor, Executor)

    assert executor.run(["sh", "-c", "echo built > /root/artifact"]).exit_code == 0
    assert executor.host_path("/root/artifact").read_text() == "built\n"
    executor.host_path("/etc/from-host").write_text("placed\n")
    assert executor.run(["cat", "/etc/from-host"]).stdout == "placed\n"
    # /bin/sh is a link to /bin/busybox: followed inside the instance's root, never the host's.
    assert executor.host_path("/bin/sh") == instance.merged_dir / "bin" / "busybox"
    assert executor.host_path("/../../etc/passwd") == instance.merged_dir / "etc" / "passwd"

    info = executor.os_info()
    assert (info.id, info.version_id, info.id_like) == ("busybox", "1.35.0", ("linux", "tiny"))
    assert executor.user_id("www-data") == 33 and executor.user_id("root") == 0
    assert executor.user_id("1234") == 1234
    assert executor.group_id("staff") == 50
    with pytest.raises(InvalidInput, match="no user named 'ghost'"):
        executor.user_id("ghost")
    with pytest.raises(InvalidInput, match="no group named 'ghosts'"):
        executor.group_id("ghosts")

    executor.run(["sh", "-c", "setsid sleep 1000 < /dev/null > /dev/null 2>&1 &"])
    assert "sleep 1000" in executor.run(["ps"]).stdout
    before = instances.get(instance.id).init
    executor.reboot()
    after = instances.get(instance.id)
    assert after.state == "running" and after.init != before
    assert "sleep 1000" not in executor.run(["ps"]).stdout  # processes restarted
    assert executor.run(["cat", "/root/artifact"]).stdout == "built\n"  # files kept
    instances.stop(instance.id)
    with pytest.raises(IncorrectInstanceState):
        executor.host_path("/root/artifact")


def test_os_release_parsing_handles_quotes_and_comments() -> None:
    text = '# comment\nID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID_LIKE=\n'
    values = parse_os_release(text)
    assert values["ID"] == "debian" and values["VERSION_ID"] == "12"
    assert values["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)" and values["ID_LIKE"] == ""
