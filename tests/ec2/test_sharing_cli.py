"""Sharing on the command line: every image, snapshot and instance command acts as ``--account`` (or
``KILN_ACCOUNT``), and a refusal prints EC2's code and message, then whom it refused where."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

PEER = "210987654321"


@pytest.fixture
def kiln(kiln):
    """The shared in-process ``kiln`` fixture, asserting the exit code (0 unless ``code=``): what the command
    printed on stdout, or on stderr when it was to fail."""

    def run(*args: str, code: int = 0) -> str:
        result = kiln(*args)
        assert result.exit_code == code, result.stderr
        return result.stdout if code == 0 else result.stderr

    return run


@pytest.fixture
def as_json(kiln):
    return lambda *args: json.loads(kiln(*args, "--output", "json"))


@pytest.fixture
def ami(busybox_dir: Path, kiln) -> str:
    kiln("account", "create", "peer", "--account-id", PEER)
    return kiln("image", "import", str(busybox_dir), "--name", "cli-shared", "--tag", "team=secret").strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")
def test_cli_refuses_then_allows_another_account(
    ami: str, kiln, as_json, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert as_json("image", "list", "--account", PEER)["Images"] == []
    err = kiln("image", "describe", ami, "--account", PEER, code=1)
    assert err.splitlines()[0] == f"error: InvalidAMIID.NotFound: The image id '[{ami}]' does not exist"
    assert err.splitlines()[-1] == f"refused as account {PEER} in region local"
    err = kiln("instance", "run", ami, "--account", PEER, code=1)
    assert err.splitlines()[0] == f"error: AuthFailure: Not authorized for images: [{ami}]"
    assert err.splitlines()[-1] == f"refused as account {PEER} in region local"
    err = kiln("image", "share", ami, "--add", f"UserId={PEER}", "--account", PEER, code=1)
    assert "InvalidAMIID.NotFound" in err
    assert as_json("instance", "list", "--account", PEER)["Instances"] == []

    shared = as_json("image", "share", ami, "--add", f"UserId={PEER}")
    assert shared["LaunchPermissions"] == [{"UserId": PEER}]
    assert kiln("image", "describe-attribute", ami) == f"UserId={PEER}\n"
    monkeypatch.setenv("KILN_ACCOUNT", PEER)  # the peer from here on, without --account
    listed = as_json("image", "list")["Images"]
    assert [i["ImageId"] for i in listed] == [ami] and listed[0]["Tags"] == []
    assert "123456789012" in kiln("image", "list")  # the owner column
    instance = as_json("instance", "run", ami)
    assert instance["Kiln"]["AccountId"] == PEER
    assert [i["InstanceId"] for i in as_json("instance", "list")["Instances"]] == [instance["InstanceId"]]
    assert "InvalidInstanceID.NotFound" in kiln(
        "instance", "terminate", instance["InstanceId"], "--account", "123456789012", code=1
    )
    kiln("instance", "terminate", instance["InstanceId"])
    err = kiln("image", "deregister", ami, code=1)
    assert err.startswith(f"error: AuthFailure: Not authorized for images: [{ami}]")
    err = kiln("image", "copy", ami, "--name", "peer-copy", code=1)
    assert "error: InvalidRequest: You do not have permission to access the storage of this ami.\n" in err
    err = kiln("image", "export", ami, "-o", str(tmp_path / "x.tar"), code=1)
    assert "InvalidRequest" in err

    monkeypatch.delenv("KILN_ACCOUNT")
    snapshot = as_json("image", "describe", ami)["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert kiln("snapshot", "share", snapshot, "--add", f"UserId={PEER}") == f"UserId={PEER}\n"
    assert as_json("snapshot", "describe-attribute", snapshot)["CreateVolumePermissions"] == [
        {"UserId": PEER}
    ]
    assert "AuthFailure" in kiln("snapshot", "delete", snapshot, "--account", PEER, code=1)
    assert [s["SnapshotId"] for s in as_json("snapshot", "list", "--account", PEER)["Snapshots"]] == [snapshot]
    copy = kiln("image", "copy", ami, "--name", "peer-copy", "--account", PEER).strip()
    assert as_json("image", "describe", copy, "--account", PEER)["OwnerId"] == PEER
    assert as_json("image", "list", "--owner", "self", "--account", PEER)["Images"][0]["ImageId"] == copy
    kiln("image", "export", ami, "-o", str(tmp_path / "peer.tar"), "--account", PEER)
    assert (tmp_path / "peer.tar").stat().st_size > 0
    assert kiln("image", "reset-attribute", ami) == f"{ami}: (private)\n"
    assert "InvalidAMIID.NotFound" in kiln("image", "describe", ami, "--account", PEER, code=1)


def test_cli_block_public_access_and_bad_input(ami: str, kiln, as_json) -> None:
    assert kiln("image", "block-public-access", "get") == "unblocked (account 123456789012, region local)\n"
    assert as_json("image", "block-public-access", "enable") == {
        "ImageBlockPublicAccessState": "block-new-sharing"
    }
    err = kiln("image", "share", ami, "--add", "Group=all", code=1)
    assert err.startswith("error: OperationNotPermitted: You can't publicly share this image because block public")
    assert "refused as account 123456789012 in region local" in err
    assert as_json("image", "block-public-access", "get", "--account", PEER) == {
        "ImageBlockPublicAccessState": "unblocked", "ManagedBy": "account"
    }
    kiln("image", "block-public-access", "disable")
    assert as_json("image", "share", ami, "--add", "Group=all")["LaunchPermissions"] == [{"Group": "all"}]

    assert "InvalidAMIAttributeItemValue" in kiln("image", "share", ami, "--add", "UserId=12", code=1)
    assert "InvalidUserID.Malformed" in kiln("image", "list", "--owner", "someone", code=1)
    assert "InvalidParameterValue" in kiln(
        "image", "describe-attribute", ami, "--attribute", "colour", code=1
    )
    assert "account 999999999999 does not exist" in kiln("image", "list", "--account", "999999999999", code=1)
