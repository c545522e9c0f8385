"""VM builds killed with SIGKILL, and a component that reboots its VM. Each build runs in a process of
its own (started here), in VMs booted from the bootable Debian image (tests/vm/vm_image.yaml) under
KVM when usable, else TCG (minutes per boot). Never skipped.

- Killed while its component runs in the guest (kiln's AWSTOE runner is running there; QEMU,
  daemonized, outlives the build's process): kiln's recovery marks the build FAILED as for a sandbox
  build, kills that QEMU (by the pid in the instance's row) and leaves no instance directory, overlay,
  seed, mount, AMI or blob. Its infrastructure configuration says ``subnetId: none``: QEMU's user
  network is restricted, the guest reaches no server of the host but still the metadata endpoint.
  The other build's configuration allows host-local addresses (``kiln:HostLocalNetwork: allow``): its
  guest reaches the host's loopback server through 169.254.0.2 (without the tag QEMU would run in a
  network namespace of its own, where that address leads nowhere: kiln.runtime.vm_netns).
- A component writes a marker, reboots (the ``Reboot`` action: the guest is really reset) and checks
  after it that the boot id changed and the marker is there; the document resumes after the reboot.
  The same build is then killed during CreateImage's capture of the disk, while the raw copy is
  loop-mounted in the instance's directory: recovery unmounts it, frees the loop device and removes
  everything, and no half-made AMI or blob is left.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.processes import processes_of
from tests.vm_builds import test_vm_builds as vm_builds
from tests.vm_builds.test_vm_builds import VmHome, _instances_of, _vm_build_inputs

# the bootable image's fixtures of the VM build tests (module-scoped: built once for this module)
vm_home, in_vm_home = vm_builds.vm_home, vm_builds.in_vm_home

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)"),
    pytest.mark.network,
    pytest.mark.slow,
]

BOOT_SECONDS = 1800  # a boot under TCG on a busy two-core machine, and another for the reboot
TOKEN = ("test -n \"$(curl -sS -m 20 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "
         "http://169.254.169.254/latest/api/token)\"")
HOST_SERVER = "http://169.254.0.2:PORT/"  # QEMU's user network: the host's loopback, as the guest sees it
HOLDS = """
name: vm-kill-exec
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: NoWayOut
        action: ExecuteBash
        inputs:
          commands:
            - TOKEN_CHECK
            - if curl -s -m 10 -o /dev/null HOST_SERVER; then echo reached-the-host; exit 1; fi
      - name: Holds
        action: ExecuteBash
        inputs:
          commands:
            - sleep 1800
"""
REBOOTS = """
name: vm-reboots
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: WriteMarker
        action: ExecuteBash
        inputs:
          commands:
            - curl -sS -m 30 -o /dev/null HOST_SERVER
            - cat /proc/sys/kernel/random/boot_id > /var/lib/kiln-boot-before
            - echo kept > /etc/kiln-reboot-marker
      - name: RebootNow
        action: Reboot
      - name: AfterReboot
        action: ExecuteBash
        inputs:
          commands:
            - test "$(cat /proc/sys/kernel/random/boot_id)" != "$(cat /var/lib/kiln-boot-before)"
            - grep -qx kept /etc/kiln-reboot-marker
  - name: validate
    steps:
      - name: MarkerKept
        action: ExecuteBash
        inputs:
          commands:
            - grep -qx kept /etc/kiln-reboot-marker
"""
CHILD = """
import sys
from kiln.services import startup
startup.install()
from kiln.services.builds.workflow import create_and_build
with open(sys.argv[3], "a", buffering=1) as log:
    create_and_build(recipe_arn=sys.argv[1], infrastructure_arn=sys.argv[2], tests_enabled=False,
                     progress=lambda line: log.write(line + "\\n"))
"""


@pytest.fixture
def host_server() -> Iterator[str]:
    """An HTTP server on the host's loopback; its URL as a guest on QEMU's user network reaches it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield HOST_SERVER.replace("PORT", str(server.server_address[1]))
    server.shutdown()
    server.server_close()
    thread.join()


def _document(text: str, server: str) -> str:
    return text.replace("TOKEN_CHECK", json.dumps(TOKEN)).replace("HOST_SERVER", server)


def _start_build(home: Path, recipe: str, infrastructure: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KILN_HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("KILN_DATABASE_URL", None)
    return subprocess.Popen([sys.executable, "-c", CHILD, recipe, infrastructure, str(log)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait(child: subprocess.Popen[bytes], log: Path, what: str, predicate: Callable[[], bool],
          poll: float = 1.0) -> None:
    deadline = time.monotonic() + BOOT_SECONDS
    while not predicate():
        tail = "\n".join(log.read_text().splitlines()[-15:]) if log.exists() else ""
        assert child.poll() is None, f"the build ended before {what}: {tail}\n{child.stderr.read()!r}"  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"no {what} within {BOOT_SECONDS} s: {tail}"
        time.sleep(poll)


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as handle:
        points = [line.split()[4] for line in handle]
    return [point for point in points if point.startswith(f"{root}/")]


def _loops_under(root: Path) -> list[str]:
    found = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            path = backing.read_text().strip()
        except OSError:
            continue
        if path.startswith(f"{root}/"):
            found.append(path)
    return found


def _store_state() -> tuple[set[str], set[str]]:
    """(AMI ids, blob digests) of the local region."""
    from kiln.store import api
    from kiln.store.layout import Layout

    return {image.id for image in api.describe_images()}, set(Layout.for_region("local").blobs.all_digests())


def _recover_and_check(kiln, home: Path, image_arn: str, instance_id: str,  # type: ignore[no-untyped-def]
                       store_before: tuple[set[str], set[str]]) -> None:
    """Run kiln's start-up recovery (a fresh command), then: the build FAILED as interrupted, nothing
    of its VM left, no AMI or blob added, the store consistent."""
    from kiln.db.engine import reset_engines
    from kiln.runtime import instances, procs
    from kiln.services.builds import records as images
    from kiln.store import api

    qemu = instances.get(instance_id).init
    reset_engines()  # the next kiln command opens the database afresh, which runs recovery
    result = kiln("image", "builds", "--output", "json")
    assert result.exit_code == 0, result.stderr
    image = images.get_image(image_arn)
    assert image["state"]["status"] == "FAILED", image["state"]
    assert image["state"]["reason"].startswith("interrupted"), image["state"]
    instance = instances.get(instance_id)
    assert instance.state == "terminated", instance.state
    if qemu is not None:
        assert not procs.is_alive(qemu.pid, qemu.start_time), f"QEMU (pid {qemu.pid}) of {instance_id} still runs"
    deadline = time.monotonic() + 30  # an SSH client of the killed build sees its connection drop
    while processes_of(home / "instances" / instance_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_of(home / "instances" / instance_id) == [], "no QEMU or SSH client of the instance is left"
    assert _mounts_under(home) == [], "no loop or overlay mount is left under KILN_HOME"
    assert _loops_under(home) == [], "no loop device is left on a file of KILN_HOME"
    for leftover in (home / "instances" / instance_id, home / "scratch" / instance_id,
                     home / "volumes" / f"{instance_id}-root.qcow2"):
        assert not leftover.exists(), f"{leftover} is left"
    assert list(home.glob("instances/*/root.qcow2")) == [], "no overlay is left"
    assert list(home.glob("**/kiln-capture-*")) == [], "no capture scratch is left"
    assert _store_state() == store_before, "no AMI and no blob were added"
    assert api.fsck("local").ok


def test_a_build_killed_while_its_component_runs_in_the_guest_is_recovered(  # type: ignore[no-untyped-def]
        in_vm_home: VmHome, kiln, tmp_path: Path, host_server: str) -> None:
    from kiln.runtime import instances, procs, vm_ssh
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration

    store_before = _store_state()
    recipe, _ = _vm_build_inputs("vm-kill-exec", in_vm_home.parent, _document(HOLDS, host_server))
    infrastructure = create_infrastructure_configuration({
        "name": "vm-no-network", "instanceTypes": ["t3.micro"], "subnetId": "none",
        "resourceTags": {"kiln:vm": "true"}})["infrastructureConfigurationArn"]
    log = tmp_path / "progress.log"
    child = _start_build(in_vm_home.home, recipe, infrastructure, log)
    try:
        # NoWayOut has passed (a step reaching the host fails the build, which _wait reports)
        _wait(child, log, "the first step's success in the guest", lambda: log.exists()
              and "      step NoWayOut [ExecuteBash]: success" in log.read_text().splitlines())
        [image_arn] = {i.tags["kiln:ImageArn"] for i in instances.list_instances()
                       if i.tags.get("kiln:ImageArn", "").split("/")[-3:-2] == ["vm-kill-exec"]}
        build_vm = _instances_of(image_arn)["build"]
        # the step is running in the guest when the build's process is killed ([k]: pgrep -f would
        # otherwise find the shell asking)
        _wait(child, log, "kiln's runner and the step's sleep running in the guest", lambda: vm_ssh.exec_vm(
            build_vm.id, ["sh", "-c", "pgrep -f '[k]iln_toe_runner.py' && pgrep -x sleep"], timeout=120,
        ).exit_code == 0, poll=2.0)
    finally:
        child.kill()  # SIGKILL: no clean-up code of the build runs
        child.wait()
    qemu = instances.get(build_vm.id).init
    assert qemu is not None and procs.is_alive(qemu.pid, qemu.start_time), "QEMU outlives the killed build"
    assert instances.get(build_vm.id).network == "none"
    netdev = next(arg for arg in Path(f"/proc/{qemu.pid}/cmdline").read_bytes().split(b"\0")
                  if arg.startswith(b"user,id=net0"))
    assert b",restrict=on" in netdev, netdev
    _recover_and_check(kiln, in_vm_home.home, image_arn, build_vm.id, store_before)


def test_a_component_reboots_its_vm_and_a_kill_during_capture_is_recovered(  # type: ignore[no-untyped-def]
        in_vm_home: VmHome, kiln, tmp_path: Path, host_server: str) -> None:
    from kiln.runtime import instances
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration

    store_before = _store_state()
    recipe, _ = _vm_build_inputs("vm-reboots", in_vm_home.parent, _document(REBOOTS, host_server))
    infrastructure = create_infrastructure_configuration({
        "name": "vm-host-local", "instanceTypes": ["t3.micro"], "resourceTags": {"kiln:vm": "true"},
        "tags": {"kiln:HostLocalNetwork": "allow"}})["infrastructureConfigurationArn"]
    log = tmp_path / "progress.log"
    child = _start_build(in_vm_home.home, recipe, infrastructure, log)
    instance_dir: Path | None = None

    def capturing() -> bool:
        nonlocal instance_dir
        if instance_dir is None:
            found = [i for i in instances.list_instances() if i.tags.get("kiln:Purpose") == "build"
                     and i.tags.get("kiln:ImageArn", "").split("/")[-3:-2] == ["vm-reboots"]]
            if not found:
                return False
            assert found[0].host_local_network, "the configuration's tag reached the VM"
            instance_dir = in_vm_home.home / "instances" / found[0].id
        # the raw copy loop-mounted and the overlay over the AMI's layers: the sync is under way
        return len([m for m in _mounts_under(instance_dir) if "/kiln-capture-" in m]) >= 2

    try:
        _wait(child, log, "capture of the build VM's disk", capturing, poll=0.05)
        mounted, loops = _mounts_under(instance_dir), _loops_under(instance_dir)  # type: ignore[arg-type]
    finally:
        child.kill()  # SIGKILL, in the middle of CreateImage's capture
        child.wait()
    assert instance_dir is not None
    assert len(mounted) >= 2 and loops, f"the kill landed while the capture held its mounts: {mounted} {loops}"
    lines = log.read_text().splitlines()
    # the component rebooted the guest and its document went on after it, in the new boot
    assert any("rebooting for step build/RebootNow, then resuming the document" in line for line in lines), lines
    assert any(line.strip() == "step WriteMarker [ExecuteBash]: success (before the reboot)" for line in lines), lines
    assert any(line.strip() == "step AfterReboot [ExecuteBash]: success" for line in lines), lines
    assert any(line.strip() == "step MarkerKept [ExecuteBash]: success" for line in lines), lines
    [image_arn] = {i.tags["kiln:ImageArn"] for i in instances.list_instances()
                   if i.tags.get("kiln:ImageArn", "").split("/")[-3:-2] == ["vm-reboots"]}
    _recover_and_check(kiln, in_vm_home.home, image_arn, instance_dir.name, store_before)
