"""The ``kiln instance`` verbs that need no image store, through the ``kiln`` command (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiln.runtime import instances


@pytest.fixture
def kiln(kiln):
    """``kiln instance …``: the shared in-process ``kiln`` fixture with the noun filled in."""
    return lambda *args: kiln("instance", *args)


def test_exec_streams_output_and_exits_with_the_commands_code(
    kiln, busybox_rootfs: Path, cleanup_instances
) -> None:
    instance = instances.launch([busybox_rootfs])
    cleanup_instances.append(instance.id)
    done = kiln("exec", instance.id, "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (done.exit_code, done.stdout, done.stderr) == (7, "out\n", "err\n")
    as_json = kiln("exec", "--output", "json", instance.id, "--", "ls", "-d", "/etc")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == {
        "InstanceId": instance.id, "ExitCode": 0, "TimedOut": False, "Stdout": "/etc\n", "Stderr": "",
    }  # fmt: skip
    with_env = kiln("exec", "-e", "A=1", "--cwd", "/etc", instance.id, "--", "sh", "-c", 'echo "$A $PWD"')
    assert with_env.stdout == "1 /etc\n"
    timed_out = kiln("exec", "--timeout", "0.5", instance.id, "--", "sleep", "30")
    assert timed_out.exit_code == 124 and "timed out" in timed_out.stderr


def test_stop_start_reboot_terminate_list_describe(kiln, busybox_rootfs: Path, cleanup_instances) -> None:
    instance = instances.launch([busybox_rootfs], tags={"Name": "web"})
    cleanup_instances.append(instance.id)
    stopped = kiln("stop", instance.id, "--output", "json")
    assert stopped.exit_code == 0, stopped.stderr
    [change] = json.loads(stopped.stdout)["Instances"]
    assert change["PreviousState"] == {"Code": 16, "Name": "running"}
    assert change["CurrentState"] == {"Code": 80, "Name": "stopped"}

    refused = kiln("exec", instance.id, "--", "true")
    assert refused.exit_code != 0 and "not running" in refused.stderr

    assert kiln("start", instance.id).stdout.strip() == f"{instance.id} running"
    assert kiln("reboot", instance.id).stdout.strip() == f"{instance.id} running"

    listed = json.loads(kiln("list", "--output", "json").stdout)["Instances"]
    assert [i["InstanceId"] for i in listed] == [instance.id]
    assert kiln("list", "--state", "stopped", "--output", "json").stdout.count("InstanceId") == 0
    assert instance.id in kiln("list").stdout

    described = json.loads(kiln("describe", instance.id, "--output", "json").stdout)
    assert described["State"]["Name"] == "running" and described["Tags"] == [{"Key": "Name", "Value": "web"}]
    assert described["Kiln"]["LowerDirs"] == [str(busybox_rootfs)]

    assert kiln("terminate", instance.id).stdout.strip() == f"{instance.id} terminated"
    assert not instance.dir.exists()


def test_errors_are_one_line_with_the_ec2_reason(kiln, busybox_rootfs: Path, cleanup_instances) -> None:
    instance = instances.launch([busybox_rootfs], root_device_type="instance-store")
    cleanup_instances.append(instance.id)
    refused = kiln("stop", instance.id)
    assert refused.exit_code != 0
    assert refused.stderr.startswith("error: ") and "'ebs' root device type" in refused.stderr
    missing = kiln("describe", "i-00000000000000000")
    assert missing.exit_code != 0 and "does not exist" in missing.stderr
