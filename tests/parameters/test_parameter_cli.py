"""``kiln parameter``: put (with --overwrite), get with selectors, list, history, label, delete; per
--account and --region; refusals are one line with SSM's code and exit code 1, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

PEER = "210987654321"


def test_put_get_history_label_list_delete(kiln) -> None:
    assert kiln("parameter", "put", "/golden/web/owner", "team-a", "--description", "owner").stdout == "1\n"
    refused = kiln("parameter", "put", "/golden/web/owner", "team-b")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: ParameterAlreadyExists: parameter /golden/web/owner already exists")
    assert "--overwrite" in refused.stderr and "Traceback" not in refused.stderr
    put = kiln("parameter", "put", "/golden/web/owner", "team-b", "--overwrite", "--output", "json")
    assert json.loads(put.stdout) == {"Version": 2, "Tier": "Standard"}

    assert kiln("parameter", "label", "/golden/web/owner", "stable", "--version", "1").stdout == "1\n"
    assert kiln("parameter", "get", "/golden/web/owner").stdout == "team-b\n"
    assert kiln("parameter", "get", "/golden/web/owner:stable").stdout == "team-a\n"
    got = json.loads(kiln("parameter", "get", "/golden/web/owner:1", "--output", "json").stdout)["Parameter"]
    assert {key: got[key] for key in ("Name", "Value", "Version", "Selector", "Type", "DataType")} == {
        "Name": "/golden/web/owner", "Value": "team-a", "Version": 1, "Selector": ":1", "Type": "String",
        "DataType": "text"}

    history = json.loads(kiln("parameter", "history", "/golden/web/owner", "--output", "json").stdout)
    assert [(p["Version"], p["Value"], p["Labels"]) for p in history["Parameters"]] == [
        (1, "team-a", ["stable"]), (2, "team-b", [])]
    text = kiln("parameter", "history", "/golden/web/owner").stdout.splitlines()
    assert text[0].split() == ["Version", "Value", "Labels", "DataType", "LastModified", "Description"]
    assert text[1].split()[:4] == ["1", "team-a", "stable", "text"]

    bad = kiln("parameter", "label", "/golden/web/owner", "prod", "1st")
    assert bad.exit_code == 1 and "'1st'" in bad.stderr
    assert kiln("parameter", "get", "/golden/web/owner:prod").exit_code == 1  # nothing was labelled

    missing = kiln("parameter", "get", "/golden/web/owner:canary")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: ParameterVersionNotFound")

    long_name = "/golden/" + "deep/" * 3 + "name-that-is-long-enough-to-be-cut-in-a-narrow-table"
    kiln("parameter", "put", long_name, "v")
    listing = kiln("parameter", "list", "--path", "/golden").stdout
    assert long_name in listing and "/golden/web/owner" in listing
    assert kiln("parameter", "delete", "/golden/web/owner").exit_code == 0
    names = [p["Name"] for p in json.loads(kiln("parameter", "list", "--output", "json").stdout)["Parameters"]]
    assert names == [long_name]


def test_bad_name_is_one_clear_error(kiln) -> None:
    result = kiln("parameter", "put", "/golden/web latest", "v")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "error: ValidationException: Name: parameter name '/golden/web latest' has characters SSM does not "
        "allow (' '); use letters, digits, '.', '-', '_' and '/' between levels")
    assert json.loads(kiln("parameter", "list", "--output", "json").stdout) == {"Parameters": []}


def test_image_parameters_per_account_and_region(kiln, busybox_dir: Path) -> None:
    ami = kiln("image", "import", str(busybox_dir), "--name", "golden-web").stdout.strip()
    kiln("region", "create", "eu-west-1")
    kiln("account", "create", "peer", "--account-id", PEER)
    assert kiln("parameter", "put", "/golden/web/latest", ami, "--data-type", "aws:ec2:image").exit_code == 0

    other_region = kiln("parameter", "put", "/golden/web/latest", ami, "--data-type", "aws:ec2:image",
                        "--region", "eu-west-1")
    assert other_region.exit_code == 1
    assert f"AMI {ami} does not exist in region eu-west-1" in other_region.stderr
    other_account = kiln("parameter", "put", "/golden/web/latest", ami, "--data-type", "aws:ec2:image",
                         "--account", PEER)
    assert other_account.exit_code == 1 and f"not shared with account {PEER}" in other_account.stderr
    assert kiln("parameter", "get", "/golden/web/latest", "--account", PEER).exit_code == 1
    assert kiln("parameter", "list", "--region", "eu-west-1").stdout.splitlines()[1:] == []
    assert kiln("parameter", "get", "/golden/web/latest").stdout == f"{ami}\n"
    no_region = kiln("parameter", "put", "/x", "v", "--region", "mars-north-1")
    assert no_region.exit_code == 1 and "region mars-north-1 does not exist" in no_region.stderr
