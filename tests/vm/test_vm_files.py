"""What a VM instance is made of, without booting it: the NoCloud seed, the qcow2 overlay over the
image's disk, the SSH command ``kiln instance exec`` runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from kiln.errors import InvalidInput
from kiln.runtime import vm_disk, vm_seed
from kiln.runtime.vm_ssh import remote_command

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ8yJmHcbYBZkbyTPOsk1NTxo6wJsXyh1GAnS1ks1e1b laptop"


def test_the_seed_is_a_cidata_volume_with_meta_user_and_vendor_data(tmp_path: Path) -> None:
    files = vm_seed.seed_files("i-0123456789abcdef0", "web-1", user_data=b"#!/bin/sh\necho hi\n",
                               public_keys=[KEY, "ssh-rsa AAAAB3 kiln"])
    seed = vm_seed.write_seed(tmp_path / "seed.img", files)
    label = subprocess.run(["blkid", "-o", "value", "-s", "LABEL", str(seed)], capture_output=True, text=True)
    assert label.stdout.strip() == "CIDATA"
    meta = yaml.safe_load(vm_seed.read_seed(seed, "meta-data"))
    assert meta == {"instance-id": "i-0123456789abcdef0", "local-hostname": "web-1",
                    "public-keys": [KEY, "ssh-rsa AAAAB3 kiln"]}
    assert vm_seed.read_seed(seed, "user-data") == b"#!/bin/sh\necho hi\n"  # the user's, untouched
    vendor = vm_seed.read_seed(seed, "vendor-data").decode()
    assert vendor.startswith("#cloud-config\n")
    config = yaml.safe_load(vendor)
    assert config["disable_root"] is False
    [[shell, flag, script]] = config["bootcmd"]  # kiln's exec agent, written and started at every boot
    assert (shell, flag) == ("sh", "-c") and "/var/lib/kiln/exec-agent.py" in script and "systemd-run" in script


def test_without_user_data_the_seed_has_an_empty_cloud_config(tmp_path: Path) -> None:
    seed = vm_seed.write_seed(tmp_path / "seed.img", vm_seed.seed_files("i-1", "h", user_data=None, public_keys=[]))
    assert vm_seed.read_seed(seed, "user-data") == b"#cloud-config\n{}\n"
    assert "public-keys" not in yaml.safe_load(vm_seed.read_seed(seed, "meta-data"))


def _backing(tmp_path: Path, size: str = "64M") -> Path:
    backing = tmp_path / "image.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(backing), size], check=True)
    return backing


def test_the_root_volume_is_a_qcow2_overlay_of_the_image_disk(tmp_path: Path) -> None:
    backing = _backing(tmp_path)
    overlay = vm_disk.create_overlay(backing, tmp_path / "root.qcow2")
    info = vm_disk.info(overlay)
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == str(backing.resolve())
    assert info["backing-filename-format"] == "qcow2"
    assert info["virtual-size"] == 64 << 20
    assert overlay.stat().st_size < 1 << 20  # copy-on-write: nothing copied


def test_a_bigger_root_volume_grows_the_overlay_and_a_smaller_one_is_refused(tmp_path: Path) -> None:
    backing = _backing(tmp_path)
    grown = vm_disk.create_overlay(backing, tmp_path / "grown.qcow2", size=1 << 30)
    assert vm_disk.info(grown)["virtual-size"] == 1 << 30
    with pytest.raises(InvalidInput) as refused:
        vm_disk.create_overlay(backing, tmp_path / "small.qcow2", size=32 << 20)
    assert refused.value.location == "VolumeSize"
    assert not (tmp_path / "small.qcow2").exists()


def test_the_remote_command_quotes_every_argument(tmp_path: Path) -> None:
    """The line ssh hands the guest's shell runs the argv exactly, in ``cwd`` with ``env``."""
    line = remote_command(["sh", "-c", 'printf "%s|%s" "$GREETING" "$(pwd)" > \'out file\''],
                          env={"GREETING": "hi there"}, cwd=str(tmp_path))
    assert line.startswith(f"cd {tmp_path} && env 'GREETING=hi there' sh -c ")
    subprocess.run(["sh", "-c", line], check=True)
    assert (tmp_path / "out file").read_text() == f"hi there|{tmp_path}"


def test_exec_keys_come_from_a_pool_made_ahead_each_used_once(kiln_home: Path, tmp_path: Path) -> None:
    import threading

    from kiln.runtime import vm_keys

    first = vm_keys.take_key(tmp_path / "one", comment="kiln-exec@i-1")  # pool empty: made now
    set_up = threading.Event()
    vm_keys.refill_pool_once(set_up)  # as a launch does, to refill once QEMU is set up
    assert list(vm_keys.pool_dir().glob("*")) == []  # nothing before
    set_up.set()
    vm_keys.wait_refills(60)
    assert len(list(vm_keys.pool_dir().glob("*.key"))) == vm_keys.POOL_SIZE, "the pool was not refilled"
    second = vm_keys.take_key(tmp_path / "two", comment="kiln-exec@i-2")  # from the pool
    assert first.endswith(" kiln-exec@i-1") and second.endswith(" kiln-exec@i-2")
    assert first.split()[1] != second.split()[1]
    for name, public in (("one", first), ("two", second)):
        derived = subprocess.run(["ssh-keygen", "-y", "-f", str(tmp_path / name)], capture_output=True, text=True,
                                 check=True).stdout.split()[:2]
        assert derived == public.split()[:2]  # the private key is the public key's pair
        assert (tmp_path / f"{name}.pub").read_text().strip() == public
    assert second.split()[1] not in "".join(p.read_text() for p in vm_keys.pool_dir().glob("*.pub"))


def test_the_seed_is_a_clean_fat_volume_with_long_names(tmp_path: Path) -> None:
    """Written without mtools (kiln.runtime.fat_files); fsck.vfat and mtools read it back."""
    files = vm_seed.seed_files("i-0123456789abcdef0", "web-1", user_data=b"x" * 20000, public_keys=[KEY])
    seed = vm_seed.write_seed(tmp_path / "seed.img", files)
    check = subprocess.run(["fsck.vfat", "-n", "-v", str(seed)], capture_output=True, text=True)
    assert check.returncode == 0 and "4 files" in check.stdout, check.stdout + check.stderr  # 3 and the label
    listing = subprocess.run(["mdir", "-b", "-i", str(seed), "::/"], capture_output=True, text=True, check=True,
                             env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"})
    assert sorted(listing.stdout.split()) == ["::/meta-data", "::/user-data", "::/vendor-data"]
    assert {name: vm_seed.read_seed(seed, name) for name in files} == files


def test_the_ports_a_process_listens_on(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import socket

    from kiln.runtime import vm_process

    with socket.socket() as listening, socket.socket() as bound_only:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        bound_only.bind(("127.0.0.1", 0))
        port, other = listening.getsockname()[1], bound_only.getsockname()[1]
        # this process may listen elsewhere too (a test server): only these two are known
        found = vm_process.listening_ports(os.getpid())
        assert port in found and other not in found  # through sock_diag

        def refused() -> dict[str, int]:
            raise PermissionError("no sock_diag in this container")

        monkeypatch.setattr(vm_process, "_listening_sockets", refused)  # a fault this host cannot make
        assert vm_process.listening_ports(os.getpid()) == found  # through /proc/net/tcp
