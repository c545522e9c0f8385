"""VM instances, booted for real: a bootable Debian image (tests/vm/vm_image.yaml) run with
``kiln instance run --vm`` under KVM when kiln's probe finds it usable, else TCG (minutes: one VM is
booted and used for every step, and booted again once after stop/start). Never skipped.

Inside the guest: ``kiln instance exec`` over SSH and through kiln's serial agent, the IMDSv2
endpoint answering a token and the AMI id, the user data run by cloud-init, the key pair's key logging
in. A reboot resets the guest in the same QEMU process, keeping a file. Then stop/start keeps a file
of the root volume, QEMU killed with SIGKILL is found stopped by recovery,
and CreateImage captures what the guest changed as one more layer, and terminate removes
the overlay. An instance-store VM cannot be stopped."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.vm_support import BuiltImage, module_home

from kiln.runtime import procs

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)"),
    pytest.mark.network,
    pytest.mark.slow,
]

BOOT_SECONDS = 1200  # TCG on a busy two-core machine: minutes
USER_DATA = "#cloud-config\nruncmd:\n  - echo kiln-user-data-ran-$(cat /etc/hostname) > /dev/ttyS0\n"
IMDS = ("T=$(curl -sS -X PUT http://169.254.169.254/latest/api/token "
        "-H 'X-aws-ec2-metadata-token-ttl-seconds: 60'); "
        "echo ami=$(curl -sS -H \"X-aws-ec2-metadata-token: $T\" http://169.254.169.254/latest/meta-data/ami-id); "
        "echo type=$(curl -sS -H \"X-aws-ec2-metadata-token: $T\" "
        "http://169.254.169.254/latest/meta-data/instance-type); "
        "echo without-token=$(curl -s -o /dev/null -w '%{http_code}' "
        "http://169.254.169.254/latest/meta-data/ami-id)")


@dataclass
class VmImage:
    home: Path
    ami: str


@pytest.fixture(scope="module")
def vm_image(shared_vm_image: BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmImage]:
    """The bootable Debian image (built once per session) in a KILN_HOME of this module's own; every VM
    left is terminated."""
    for home in module_home(shared_vm_image, tmp_path_factory, "vm"):
        yield VmImage(home, shared_vm_image.ami)


@pytest.fixture
def in_vm_home(vm_image: VmImage, monkeypatch: pytest.MonkeyPatch) -> Iterator[VmImage]:
    """This test works in the image's KILN_HOME."""
    from kiln.db.engine import reset_engines

    monkeypatch.setenv("KILN_HOME", str(vm_image.home))
    reset_engines()
    yield vm_image
    reset_engines()


def _json(kiln, *args: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    result = kiln(*args, "--output", "json")
    assert result.exit_code == 0, f"kiln {' '.join(args)}: {result.stderr}"
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _console_tail(home: Path, instance_id: str) -> str:
    console = home / "instances" / instance_id / "console.log"
    text = console.read_bytes().decode("utf-8", "replace") if console.exists() else ""
    return "\n".join(text.replace("\r", "").splitlines()[-20:])


def _wait_for_ssh(kiln, home: Path, instance_id: str, accel: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + BOOT_SECONDS
    while True:
        result = kiln("instance", "exec", instance_id, "--via", "ssh", "--timeout", "60", "--", "true")
        if result.exit_code == 0:
            return
        assert time.monotonic() < deadline, (
            f"no SSH login into {instance_id} under {accel} within {BOOT_SECONDS} s (last: {result.stderr!r}); "
            f"console tail:\n{_console_tail(home, instance_id)}")
        time.sleep(5)


def _exec(kiln, instance_id: str, script: str) -> str:  # type: ignore[no-untyped-def]
    result = kiln("instance", "exec", instance_id, "--timeout", "120", "--", "sh", "-c", script)
    assert result.exit_code == 0, f"{script!r} in {instance_id}: exit {result.exit_code}, {result.stderr!r}"
    return str(result.stdout)


CAPABILITY = "0100000200040000000000000000000000000000"  # VFS_CAP_REVISION_2: cap_net_bind_service, effective
GUEST_XATTRS_AND_LINKS = (
    "python3 -c \"import os; open('/root/tagged', 'w').write('t'); "
    "os.setxattr('/root/tagged', 'user.kiln', b'from-the-guest'); "
    "open('/usr/local/bin/capped', 'w').write('c'); "
    f"os.setxattr('/usr/local/bin/capped', 'security.capability', bytes.fromhex('{CAPABILITY}'))\" && "
    "echo changed-in-guest > /etc/kiln-pair-a && ln -f /etc/kiln-pair-a /etc/kiln-pair-b && sync")


def _pid(description: dict) -> procs.ProcessId | None:  # type: ignore[type-arg]
    pid = description["Kiln"]["InitPid"]
    return procs.identify(pid) if pid else None


def test_a_vm_instance_boots_answers_imds_and_keeps_its_root_volume(in_vm_home: VmImage, kiln, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kiln.runtime import recovery, vm_disk
    from kiln.runtime.instances import get

    home, ami = in_vm_home.home, in_vm_home.ami
    private = tmp_path / "laptop.pem"
    assert kiln("key-pair", "create", "laptop", "--private-key-file", str(private)).exit_code == 0
    (tmp_path / "user-data").write_text(USER_DATA)
    launched = _json(kiln, "instance", "run", ami, "--vm", "--key-name", "laptop",
                     "--user-data", f"file://{tmp_path / 'user-data'}", "--instance-type", "t3.small")
    instance_id = launched["InstanceId"]
    accel = launched["Kiln"]["Accelerator"]
    print(f"accelerator: {accel} ({launched['Kiln']['AcceleratorReason']})")
    assert launched["Kiln"]["Hypervisor"] == "qemu" and accel in ("kvm", "tcg")
    tags = {tag["Key"]: tag["Value"] for tag in launched["Tags"]}
    assert tags["kiln:Hypervisor"] == "qemu" and tags["kiln:Accelerator"] == accel  # what the EC2 API shows
    assert launched["State"]["Name"] == "running" and launched["KeyName"] == "laptop"
    assert launched["MetadataOptions"]["HttpTokens"] == "required"  # the AMI's ImdsSupport is v2.0
    assert launched["CpuOptions"]["CoreCount"] == 2 and launched["Kiln"]["MemoryMiB"] == 2048  # t3.small
    root = Path(launched["Kiln"]["RootVolume"])
    overlay = vm_disk.info(root)
    assert overlay["format"] == "qcow2" and overlay["backing-filename"] == launched["Kiln"]["BackingDisk"]
    assert Path(overlay["backing-filename"]).parent == home / "cache" / "vm-disks"

    _wait_for_ssh(kiln, home, instance_id, accel)
    # IMDSv2 from inside the guest: token, then the AMI id; no token, no answer (HttpTokens required)
    answered = _exec(kiln, instance_id, IMDS)
    assert f"ami={ami}\n" in answered and "type=t3.small\n" in answered and "without-token=401" in answered
    # the key pair's private key logs in (cloud-init put the public key in)
    port = _json(kiln, "instance", "describe", instance_id)["Kiln"]["SshPort"]
    login = subprocess.run(["ssh", "-i", str(private), "-p", str(port), "-o", "BatchMode=yes", "-o",
                            "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "root@127.0.0.1",
                            "cat /etc/hostname"], capture_output=True, text=True, timeout=120)
    assert login.stdout.strip() == instance_id, login.stderr
    # the user data ran (cloud-init's runcmd writes to the serial console: GetConsoleOutput)
    deadline = time.monotonic() + 600
    while f"kiln-user-data-ran-{instance_id}" not in kiln("instance", "console-output", instance_id).stdout:
        assert time.monotonic() < deadline, f"user data did not run: {_console_tail(home, instance_id)}"
        time.sleep(5)

    # exec without SSH: kiln's agent on the virtio-serial port, exit code and output kept
    serial = kiln("instance", "exec", instance_id, "--via", "serial", "--", "sh", "-c",
                  "echo via-serial $(id -u); echo to-stderr >&2; exit 7")
    assert (serial.exit_code, serial.stdout) == (7, "via-serial 0\n"), serial.stderr
    assert "to-stderr" in serial.stderr
    listed = kiln("instance", "list").stdout
    assert f"user-slirp ssh=127.0.0.1:{port}" in listed, listed  # the VM's network, not "host"

    # reboot: a reset of the same QEMU process; the guest boots again with the file still there
    boot_id = _exec(kiln, instance_id, "echo kept-across-reboot > /root/rebooted && sync && "
                                       "cat /proc/sys/kernel/random/boot_id")
    before = _pid(_json(kiln, "instance", "describe", instance_id))
    assert kiln("instance", "reboot", instance_id).exit_code == 0
    after = _json(kiln, "instance", "describe", instance_id)
    assert after["State"]["Name"] == "running" and _pid(after) == before and before is not None
    assert procs.is_alive(before.pid, before.start_time) and after["Kiln"]["SshPort"] == port
    deadline = time.monotonic() + BOOT_SECONDS
    while (again := kiln("instance", "exec", instance_id, "--via", "ssh", "--timeout", "60", "--",
                         "cat", "/proc/sys/kernel/random/boot_id", "/root/rebooted")).stdout[:36] in ("", boot_id[:36]):
        assert time.monotonic() < deadline, f"no second boot: {_console_tail(home, instance_id)}"
        time.sleep(5)
    assert again.stdout.endswith("kept-across-reboot\n"), again.stdout

    # stop keeps the root volume, start boots it again with the file still there
    _exec(kiln, instance_id, "echo kept-across-stop > /root/marker && sync")
    running = _json(kiln, "instance", "describe", instance_id)
    guest = _pid(running)
    assert kiln("instance", "stop", instance_id).exit_code == 0
    assert guest is not None and not procs.is_alive(guest.pid, guest.start_time)
    assert _json(kiln, "instance", "describe", instance_id)["State"]["Name"] == "stopped" and root.is_file()
    assert kiln("instance", "start", instance_id).exit_code == 0
    _wait_for_ssh(kiln, home, instance_id, accel)
    assert _exec(kiln, instance_id, "cat /root/marker") == "kept-across-stop\n"
    # for CreateImage below: extended attributes and a hard-linked pair made in the guest
    _exec(kiln, instance_id, GUEST_XATTRS_AND_LINKS)

    # QEMU killed with SIGKILL: recovery finds the instance stopped
    restarted = get(instance_id)
    guest = restarted.init
    assert guest is not None
    os.kill(guest.pid, 9)
    assert procs.wait_gone([guest], 30)
    report = recovery.recover()
    assert instance_id in report.stopped
    assert get(instance_id).state == "stopped"
    assert root.is_file(), "an EBS root volume outlives its VM's crash"

    # CreateImage from the (stopped) VM: one more layer holding what the guest changed
    from kiln.store import api

    captured = kiln("instance", "create-image", instance_id, "--name", "vm-captured")
    assert captured.exit_code == 0, captured.stderr
    child = captured.stdout.strip()
    layers = api.image_layers(child, "local")
    assert [layer.digest for layer in layers[:-1]] == [layer.digest for layer in api.image_layers(ami, "local")]
    assert layers[-1].size < 64 << 20, f"the captured layer is {layers[-1].size} bytes: more than the guest changed"
    assert api.get_image(child, "local").boot.boot_mode == api.get_image(ami, "local").boot.boot_mode
    top = api.layer_dirs(child, "local")[-1]  # the new layer, unpacked: xattrs and the link kept
    assert os.getxattr(top / "root/tagged", "user.kiln") == b"from-the-guest"
    assert os.getxattr(top / "usr/local/bin/capped", "security.capability") == bytes.fromhex(CAPABILITY)
    pair = os.stat(top / "etc/kiln-pair-a"), os.stat(top / "etc/kiln-pair-b")
    assert pair[0].st_ino == pair[1].st_ino and (top / "etc/kiln-pair-b").read_text() == "changed-in-guest\n"
    sandbox = _json(kiln, "instance", "run", child)["InstanceId"]
    assert kiln("instance", "exec", sandbox, "--", "cat", "/root/marker").stdout == "kept-across-stop\n"
    assert kiln("instance", "terminate", sandbox, "--force").exit_code == 0

    # terminate removes the overlay and the instance's directory
    assert kiln("instance", "terminate", instance_id).exit_code == 0
    assert _json(kiln, "instance", "describe", instance_id)["State"]["Name"] == "terminated"
    assert not root.exists() and not (home / "instances" / instance_id).exists()
    assert Path(launched["Kiln"]["BackingDisk"]).is_file(), "the AMI's disk stays cached for the next instance"


def test_an_instance_store_vm_cannot_be_stopped(in_vm_home: VmImage, kiln) -> None:  # type: ignore[no-untyped-def]
    home, ami = in_vm_home.home, in_vm_home.ami
    launched = _json(kiln, "instance", "run", ami, "--vm", "--root-device-type", "instance-store")
    instance_id = launched["InstanceId"]
    root = Path(launched["Kiln"]["RootVolume"])
    assert root.parent == home / "scratch" / instance_id and root.is_file()
    refused = kiln("instance", "stop", instance_id)
    assert refused.exit_code != 0 and "UnsupportedOperation" in refused.stderr and "Traceback" not in refused.stderr
    assert _json(kiln, "instance", "describe", instance_id)["State"]["Name"] == "running"
    guest = _pid(launched)
    assert kiln("instance", "terminate", instance_id, "--force").exit_code == 0
    assert guest is not None and not procs.is_alive(guest.pid, guest.start_time)
    assert not root.parent.exists() and not (home / "instances" / instance_id).exists()
