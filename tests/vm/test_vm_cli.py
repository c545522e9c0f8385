"""Key pairs: create (ed25519 and rsa through ssh-keygen), import, list, delete, with EC2's shapes
and errors; and the VM options of ``kiln instance run`` refused where they do not apply."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kiln.ec2_errors import InvalidKeyFormat, InvalidKeyPairDuplicate, InvalidKeyPairNotFound
from kiln.services.ec2 import key_pairs


def _public_of(private: Path) -> str:
    return subprocess.run(["ssh-keygen", "-y", "-f", str(private)], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("key_type", ["ed25519", "rsa"])
def test_create_returns_a_private_key_whose_public_half_is_kept(key_type: str, tmp_path: Path) -> None:
    created = key_pairs.create_key_pair("laptop", key_type=key_type, tags={"team": "web"})
    assert created["KeyPairId"].startswith("key-") and created["KeyType"] == key_type
    private = tmp_path / "key"
    private.write_text(created["KeyMaterial"])
    private.chmod(0o600)
    public = _public_of(private)
    [info] = key_pairs.describe_key_pairs(include_public_key=True)["KeyPairs"]
    assert info["PublicKey"].split()[:2] == public.split()[:2]
    assert info["KeyFingerprint"] == created["KeyFingerprint"]
    assert info["Tags"] == [{"Key": "team", "Value": "web"}]
    assert "KeyMaterial" not in info
    assert key_pairs.public_key("laptop").split()[:2] == public.split()[:2]


def test_import_list_delete_and_the_errors(tmp_path: Path) -> None:
    private = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(private)], check=True)
    public = (tmp_path / "id_ed25519.pub").read_text()
    imported = key_pairs.import_key_pair("mine", public)
    assert "KeyMaterial" not in imported
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(private) + ".pub"],
                                 capture_output=True, text=True, check=True).stdout.split()[1]
    assert "SHA256:" + imported["KeyFingerprint"].rstrip("=") == fingerprint
    with pytest.raises(InvalidKeyPairDuplicate):
        key_pairs.import_key_pair("mine", public)
    with pytest.raises(InvalidKeyFormat):
        key_pairs.import_key_pair("bad", "ssh-ed25519 not-base64!")
    with pytest.raises(InvalidKeyPairNotFound, match="'nope'"):
        key_pairs.describe_key_pairs(names=["nope"])
    assert key_pairs.describe_key_pairs(account="210987654321")["KeyPairs"] == []  # per account
    assert key_pairs.delete_key_pair(imported["KeyPairId"]) == {"Return": True, "KeyPairId": imported["KeyPairId"]}
    assert key_pairs.describe_key_pairs()["KeyPairs"] == []
    assert key_pairs.delete_key_pair("mine") == {"Return": True}  # EC2: deleting a missing name succeeds


def test_the_cli(kiln, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    private = tmp_path / "laptop.pem"
    created = kiln("key-pair", "create", "laptop", "--private-key-file", str(private), "--output", "json")
    assert created.exit_code == 0, created.stderr
    assert "KeyMaterial" not in json.loads(created.stdout)
    assert os.stat(private).st_mode & 0o777 == 0o600 and _public_of(private).startswith("ssh-ed25519 ")
    listed = kiln("key-pair", "list")
    assert "laptop" in listed.stdout and json.loads(created.stdout)["KeyPairId"] in listed.stdout
    again = kiln("key-pair", "create", "laptop")
    assert again.exit_code != 0 and "InvalidKeyPair.Duplicate" in again.stderr and "Traceback" not in again.stderr
    (tmp_path / "bad.pub").write_text("hello\n")
    bad = kiln("key-pair", "import", "bad", str(tmp_path / "bad.pub"))
    assert bad.exit_code != 0 and "InvalidKey.Format" in bad.stderr
    assert kiln("key-pair", "delete", "laptop").exit_code == 0
    assert kiln("key-pair", "list", "--output", "json").stdout.strip() == '{\n  "KeyPairs": []\n}'


def test_vm_options_need_vm(kiln) -> None:  # type: ignore[no-untyped-def]
    result = kiln("instance", "run", "ami-0123456789abcdef0", "--key-name", "laptop")
    assert result.exit_code == 2 and "--key-name applies to VM instances: add --vm" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="importing a root file system needs root")
def test_an_image_without_a_kernel_cannot_run_as_a_vm(kiln, busybox_dir: Path, kiln_home: Path) -> None:  # type: ignore[no-untyped-def]
    from kiln.store import api

    ami = api.import_rootfs(busybox_dir, name="no-kernel")
    result = kiln("instance", "run", ami, "--vm")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert f"The image {ami} is not bootable: it has no kernel" in result.stderr
    assert kiln("instance", "list", "--output", "json").stdout.strip() == '{\n  "Instances": []\n}'
    assert not (kiln_home / "cache" / "vm-disks").exists() or not any((kiln_home / "cache" / "vm-disks").iterdir())
    unknown = kiln("instance", "run", ami, "--vm", "--key-name", "missing")
    assert unknown.exit_code == 1 and "InvalidKeyPair.NotFound" in unknown.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="importing a root file system needs root")
def test_bad_vm_settings_are_refused_before_anything_is_made(kiln, busybox_dir: Path, kiln_home: Path) -> None:  # type: ignore[no-untyped-def]
    from kiln.store import api

    ami = api.import_rootfs(busybox_dir, name="no-kernel")
    tokens = kiln("instance", "run", ami, "--vm", "--http-tokens", "sometimes")
    assert tokens.exit_code == 1 and "MetadataOptions.HttpTokens" in tokens.stderr, tokens.stderr
    size = kiln("instance", "run", ami, "--vm", "--volume-size", "0")
    assert size.exit_code == 1 and "VolumeSize" in size.stderr, size.stderr
    assert not (kiln_home / "cache" / "vm-disks").exists()


def test_exec_via_an_unknown_channel_is_refused(kiln) -> None:  # type: ignore[no-untyped-def]
    result = kiln("instance", "exec", "i-0123456789abcdef0", "--via", "pigeon", "--", "true")
    assert result.exit_code == 1 and "via must be one of auto, ssh, serial" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
