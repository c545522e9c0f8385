"""The demo's golden image (examples/demo.yaml: Debian bookworm, nginx, hardened, tested), built with
the kiln-bootable-linux managed component added to its recipe and exported as qcow2, boots under plain
``qemu-system-x86_64`` — no kiln in the loop — to a login prompt on the serial console with cloud-init
finished from a NoCloud seed this test makes, and nginx answering (inside the guest and through a
forwarded port). Under KVM when kiln's probe finds it can run the guest, else under TCG; never
skipped. Both loaders: SeaBIOS and OVMF."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kiln.runtime.qemu import Accel, probe_accel

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)"),
    pytest.mark.network,
    pytest.mark.slow,
]

BOOTABLE = "arn:aws:imagebuilder:local:aws:component/kiln-bootable-linux/x.x.x"
USER_DATA = """#cloud-config
runcmd:
  - |
    echo "kiln-marker-$(cat /etc/hostname)" > /dev/ttyS0
  - |
    for i in $(seq 60); do curl -fsS http://127.0.0.1/ && break; sleep 2; done | sed 's/^/nginx-page: /' > /dev/ttyS0
"""
BOOT_SECONDS = 1200  # TCG on a busy two-core machine: minutes
LOGIN = re.compile(r"^\S+ login: ", re.MULTILINE)
CLOUD_INIT_DONE = re.compile(r"Cloud-init v\. \S+ finished at .*DataSourceNoCloud")


@pytest.fixture(scope="module")
def bootable_disk(tmp_path_factory: pytest.TempPathFactory, bootstrap_cache: Path) -> Iterator[Path]:
    """The qcow2 export of the demo image made bootable, built in a KILN_HOME of its own."""
    from kiln.db.engine import reset_engines
    from kiln.services.apply import apply_file
    from kiln.services.builds.workflow import create_and_build
    from kiln.services.demo import demo_file
    from kiln.services.ec2 import images

    work = tmp_path_factory.mktemp("bootable")
    # the demo's distribution (other regions) is not what this test is about
    documents = [d for d in yaml.safe_load_all(demo_file().read_text()) if d["kind"] != "DistributionConfiguration"]
    recipe = next(document for document in documents if document["kind"] == "ImageRecipe")
    recipe["name"] = "demo-nginx-bootable"
    recipe["components"].insert(1, {"componentArn": BOOTABLE})  # after update-linux
    (work / "recipe.yaml").write_text(yaml.safe_dump_all(documents))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KILN_HOME", str(work / "home"))
        patch.setenv("KILN_BOOTSTRAP_CACHE", str(bootstrap_cache))
        patch.delenv("KILN_DATABASE_URL", raising=False)
        reset_engines()
        try:
            arns = {outcome.kind: outcome.arn for outcome in apply_file(work / "recipe.yaml").outcomes}
            image = create_and_build(recipe_arn=arns["ImageRecipe"],
                                     infrastructure_arn=arns["InfrastructureConfiguration"])
            assert image["state"]["status"] == "AVAILABLE", image["state"]
            ami = image["outputResources"]["amis"][0]["image"]
            exported = images.export_image(ami, "qcow2", work / "debian.qcow2")
            assert exported["Bootable"] is True and exported["BootMode"] == "uefi-preferred"
        finally:
            from kiln.runtime import instances

            for instance in instances.list_instances(states=("pending", "running", "stopping", "stopped")):
                instances.terminate(instance.id, force=True)
            reset_engines()
    yield work / "debian.qcow2"
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def accel(bootable_disk: Path, tmp_path_factory: pytest.TempPathFactory) -> Accel:
    chosen = probe_accel(bootable_disk, tmp_path_factory.mktemp("kvm-probe"))
    print(f"accelerator: {chosen.name} ({chosen.reason})")
    return chosen


def _seed(directory: Path) -> Path:
    """A NoCloud seed: a FAT volume labelled CIDATA holding user-data and meta-data."""
    (directory / "user-data").write_text(USER_DATA)
    (directory / "meta-data").write_text("instance-id: i-0123456789abcdef0\nlocal-hostname: kiln-booted\n")
    seed = directory / "seed.img"
    with open(seed, "wb") as handle:
        handle.truncate(2 << 20)
    subprocess.run(["mkfs.vfat", "-n", "CIDATA", str(seed)], check=True, capture_output=True)
    subprocess.run(["mcopy", "-i", str(seed), str(directory / "user-data"), str(directory / "meta-data"), "::/"],
                   check=True, capture_output=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    return seed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _fetch(port: int, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                return response.read().decode(errors="replace")
        except OSError as error:
            if time.monotonic() > deadline:
                return f"no answer: {error}"
            time.sleep(2)


def _boot(disk: Path, accel: Accel, tmp_path: Path, firmware: list[str]) -> tuple[str, str]:
    """Boot a copy-on-write overlay of ``disk`` until login prompt, marker and cloud-init's final
    message all showed (or time ran out), then ask nginx for its page through a forwarded port;
    (the serial console's text, the page or why there is none)."""
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(disk), str(overlay)],
                   check=True)
    serial = tmp_path / "serial.log"
    port = _free_port()
    argv = ["qemu-system-x86_64", *accel.args(), "-m", "1024", "-smp", "2", "-display", "none",
            "-monitor", "none", "-no-reboot", "-serial", f"file:{serial}", *firmware,
            "-drive", f"file={overlay},if=virtio,format=qcow2",
            "-drive", f"file={_seed(tmp_path)},if=virtio,format=raw",
            "-nic", f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-:80"]  # fmt: skip
    with open(tmp_path / "qemu.stderr", "wb") as errors:
        qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=errors, stderr=errors)
    page = "not asked: the guest did not finish booting"
    try:
        deadline = time.monotonic() + BOOT_SECONDS
        while time.monotonic() < deadline and qemu.poll() is None:
            console = _console(serial)
            if LOGIN.search(console) and CLOUD_INIT_DONE.search(console) and "kiln-marker-kiln-booted" in console:
                page = _fetch(port, 60)
                break
            time.sleep(2)
    finally:
        if qemu.poll() is None:
            qemu.kill()  # by its pid
        qemu.wait()
    return _console(serial), page


def _console(serial: Path) -> str:
    return serial.read_bytes().decode("utf-8", "replace").replace("\r", "") if serial.exists() else ""


def _check(console: str, page: str, accel: Accel, how: str, tmp_path: Path) -> None:
    tail = "\n".join(console.splitlines()[-25:])
    errors = (tmp_path / "qemu.stderr").read_text(errors="replace")[-800:]
    where = f"{how} under {accel.name.upper()} ({accel.reason}); qemu stderr: {errors!r}; console tail:\n{tail}"
    assert "kiln: booting /boot/vmlinuz-" in console, f"GRUB did not start the kernel, {where}"
    assert LOGIN.search(console), f"no login prompt on ttyS0, {where}"
    assert "kiln-marker-kiln-booted" in console, f"cloud-init did not run the seed's user-data, {where}"
    assert CLOUD_INIT_DONE.search(console), f"cloud-init did not finish from the NoCloud seed, {where}"
    assert "nginx-page: <h1>Hello from a kiln-built image</h1>" in console, f"nginx did not answer inside, {where}"
    assert "<h1>Hello from a kiln-built image</h1>" in page, f"nginx did not answer on the forwarded port: {page}"


def test_demo_golden_image_boots_under_plain_qemu_with_seabios(bootable_disk: Path, accel: Accel,
                                                               tmp_path: Path) -> None:
    console, page = _boot(bootable_disk, accel, tmp_path, firmware=[])
    _check(console, page, accel, "legacy BIOS (SeaBIOS, GRUB i386-pc)", tmp_path)


def test_demo_golden_image_boots_under_plain_qemu_with_uefi(bootable_disk: Path, accel: Accel,
                                                            tmp_path: Path) -> None:
    from kiln.runtime.qemu import ovmf_firmware

    console, page = _boot(bootable_disk, accel, tmp_path, firmware=["-bios", str(ovmf_firmware())])
    _check(console, page, accel, "UEFI (OVMF, GRUB x86_64-efi)", tmp_path)
