"""Bootable images, measured side by side in one run.

- build: a fresh KILN_HOME builds debian:bookworm with the kiln-bootable-linux component (kernel,
  initramfs, cloud-init); the bootstrap tarball is cached in bench/.cache/bootstrap, the apt
  downloads are not.
- export: ``kiln image export --format qcow2`` (flatten the layers, reproducible ext4, GPT, GRUB for
  BIOS and UEFI, ESP, convert) vs the shortest plain path from the same flattened tree to a qcow2:
  ``mkfs.ext4 -d`` then ``qemu-img convert`` (no partition table, no loader, not reproducible).
- boot: the qcow2 under plain qemu-system-x86_64 (SeaBIOS) with a NoCloud seed, seconds from QEMU's
  start to the login prompt and to cloud-init's "finished" line; KVM when kiln's probe finds it
  runs the guest, else TCG (the result says which, and why).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CACHE = Path(__file__).parent / ".cache" / "bootstrap"
RECIPE = """kind: ImageRecipe
name: bench-bootable
semanticVersion: 1.0.0
parentImage: debian:bookworm
components:
  - componentArn: arn:aws:imagebuilder:local:aws:component/kiln-bootable-linux/x.x.x
---
kind: InfrastructureConfiguration
name: bench-bootable-infra
instanceTypes: [t3.micro]
"""
BOOT_SECONDS = 1500
LOGIN = re.compile(r"^\S+ login: ", re.MULTILINE)
DONE = re.compile(r"Cloud-init v\. \S+ finished")


def _build(work: Path) -> tuple[str, float]:
    from kiln.services.apply import apply_file
    from kiln.services.builds.workflow import create_and_build

    (work / "recipe.yaml").write_text(RECIPE)
    arns = {o.kind: o.arn for o in apply_file(work / "recipe.yaml").outcomes}
    started = time.perf_counter()
    image = create_and_build(recipe_arn=arns["ImageRecipe"], infrastructure_arn=arns["InfrastructureConfiguration"],
                             use_cache=False)
    return image["outputResources"]["amis"][0]["image"], time.perf_counter() - started


def _export(ami: str, work: Path) -> dict[str, Any]:
    from kiln.store import api

    started = time.perf_counter()
    api.export_image(ami, "qcow2", work / "kiln.qcow2")
    ours = time.perf_counter() - started
    tree = api.flatten(ami, work / "tree")
    size = int(subprocess.run(["du", "-sb", str(tree)], capture_output=True, text=True, check=True).stdout.split()[0])
    started = time.perf_counter()
    raw = work / "plain.raw"
    with open(raw, "wb") as handle:
        handle.truncate(-(-int(size * 1.3 + (64 << 20)) // (1 << 20)) << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(raw)], check=True, capture_output=True)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(work / "plain.qcow2")],
                   check=True, capture_output=True)
    reference = time.perf_counter() - started
    shutil.rmtree(tree, ignore_errors=True)
    return {
        "tree_mb": round(size / 1e6, 1),
        "export_kiln_qcow2_s": round(ours, 1),
        "export_mkfs_qemu_img_convert_s": round(reference, 1),
        "export_ratio": round(ours / reference, 2),
        "export_kiln_qcow2_mb": round((work / "kiln.qcow2").stat().st_size / 1e6, 1),
    }


def _seed(work: Path) -> Path:
    (work / "user-data").write_text("#cloud-config\n")
    (work / "meta-data").write_text("instance-id: i-0bench\nlocal-hostname: bench\n")
    seed = work / "seed.img"
    with open(seed, "wb") as handle:
        handle.truncate(2 << 20)
    subprocess.run(["mkfs.vfat", "-n", "CIDATA", str(seed)], check=True, capture_output=True)
    subprocess.run(["mcopy", "-i", str(seed), str(work / "user-data"), str(work / "meta-data"), "::/"], check=True,
                   capture_output=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    return seed


def _boot(disk: Path, work: Path) -> dict[str, Any]:
    from kiln.runtime.qemu import probe_accel

    accel = probe_accel(disk, work)
    serial = work / "serial.log"
    argv = ["qemu-system-x86_64", *accel.args(), "-m", "1024", "-smp", "2", "-display", "none", "-monitor", "none",
            "-no-reboot", "-serial", f"file:{serial}", "-snapshot",
            "-drive", f"file={disk},if=virtio,format=qcow2", "-drive", f"file={_seed(work)},if=virtio,format=raw"]
    started = time.perf_counter()
    qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    login = done = None
    try:
        while time.perf_counter() - started < BOOT_SECONDS and qemu.poll() is None and done is None:
            console = serial.read_text(errors="replace") if serial.exists() else ""
            if login is None and LOGIN.search(console):
                login = time.perf_counter() - started
            if DONE.search(console):
                done = time.perf_counter() - started
            time.sleep(0.5)
    finally:
        if qemu.poll() is None:
            qemu.kill()
        qemu.wait()
    return {
        "boot_accelerator": accel.name,
        "boot_accelerator_reason": accel.reason,
        "boot_to_login_prompt_s": round(login, 1) if login else None,
        "boot_to_cloud_init_done_s": round(done, 1) if done else None,
    }


def run() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="kiln-bench-boot-"))
    previous = {name: os.environ.get(name) for name in ("KILN_HOME", "KILN_BOOTSTRAP_CACHE")}
    try:
        os.environ["KILN_HOME"] = str(work / "home")
        os.environ["KILN_BOOTSTRAP_CACHE"] = str(CACHE)
        from kiln.db.engine import reset_engines
        from kiln.services.startup import install

        install()  # managed components seeded on first database use, as the kiln command does
        reset_engines()
        ami, build_seconds = _build(work)
        result: dict[str, Any] = {"build_bootable_debian_s": round(build_seconds, 1)}
        result.update(_export(ami, work))
        result.update(_boot(work / "kiln.qcow2", work))
        return result
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
