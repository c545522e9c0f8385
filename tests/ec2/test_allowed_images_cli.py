"""``kiln image allowed get|enable|disable|replace-criteria``: criteria as JSON or YAML, one-line refusals
naming the criterion, and DescribeImages' ImageAllowed in ``kiln image list --output json``."""

from __future__ import annotations

import json
from pathlib import Path


def test_allowed_images_on_the_command_line(kiln, busybox_dir: Path, tmp_path: Path) -> None:
    ami = kiln("image", "import", str(busybox_dir), "--name", "golden-web-1").stdout.strip()
    assert kiln("image", "allowed", "get").stdout.splitlines()[:2] == [
        "disabled (account 123456789012, region local)", "own images judged too: no"]

    (tmp_path / "criteria.yaml").write_text("- ImageNames: [golden-*]\n  CreationDateCondition:\n"
                                           "    MaximumDaysSinceCreated: 30\n")
    assert kiln("image", "allowed", "replace-criteria", "--image-criteria",
                f"file://{tmp_path / 'criteria.yaml'}").exit_code == 0
    bad = kiln("image", "allowed", "replace-criteria", "--image-criteria", '[{"ImageNames": ["golden-*"]}, {}]')
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: InvalidParameterValue: ImageCriteria[1]: a criterion with no members")
    assert kiln("image", "allowed", "enable", "--state", "audit-mode", "--include-own-images").stdout == (
        "audit-mode (account 123456789012, region local)\n")

    settings = json.loads(kiln("image", "allowed", "get", "--output", "json").stdout)
    assert (settings["State"], settings["Kiln"]["IncludeOwnImages"]) == ("audit-mode", True)
    assert settings["ImageCriteria"] == [{"ImageNames": ["golden-*"],
                                          "CreationDateCondition": {"MaximumDaysSinceCreated": 30}}]
    listed = json.loads(kiln("image", "list", "--output", "json").stdout)["Images"]
    assert [(i["ImageId"], i["ImageAllowed"]) for i in listed] == [(ami, True)]
    later = json.loads(kiln("image", "list", "--output", "json", env={"KILN_CLOCK": "+31d"}).stdout)["Images"]
    assert [(i["ImageId"], i["ImageAllowed"]) for i in later] == [(ami, False)]

    bad_state = kiln("image", "allowed", "enable", "--state", "strict")
    assert bad_state.exit_code == 1 and "audit-mode" in bad_state.stderr
    assert kiln("image", "allowed", "disable").stdout == "disabled (account 123456789012, region local)\n"
    assert "ImageAllowed" not in json.loads(kiln("image", "list", "--output", "json").stdout)["Images"][0]
