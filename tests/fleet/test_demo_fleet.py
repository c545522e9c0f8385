"""``kiln demo fleet``: the seed's story end to end, each stage's outcome asserted."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds and instances need root")


def test_the_fleet_demo_tells_the_whole_story(kiln) -> None:
    ran = kiln("demo", "fleet", "--output", "json")
    assert ran.exit_code == 0, ran.stderr
    stages = {stage["stage"]: stage for stage in json.loads(ran.stdout)}
    assert stages["pipeline builds web-1"]["outcome"] == "2 AMIs in us-east-1"
    group = stages["launch template and group of 3"]
    assert len(group["rows"]) == 3 and all(row[2] == "InService" for row in group["rows"])
    [old_ami] = {row[3] for row in group["rows"]}
    before = stages["audit, 31 days later"]
    assert before["outcome"] != "clean"
    [asg] = [row for row in before["rows"] if row[1] == "auto-scaling-group"]
    assert asg[2] == "web-asg" and asg[5] == "image is 31 days old, more than 30d"
    assert stages["remediate --dry-run"]["rows"] == stages["remediate"]["rows"]
    actions = [row[1] for row in stages["remediate"]["rows"]]
    assert actions == ["create-launch-template-version", "set-default-version", "start-instance-refresh"]
    assert "MinHealthyPercentage 66" in stages["remediate"]["rows"][2][3]
    after = stages["instance refresh (MinHealthyPercentage 66)"]
    assert after["outcome"] == "3 instances, refresh Successful"
    new_images = {row[3] for row in after["rows"]}
    assert len(new_images) == 1 and old_ami not in new_images
    assert stages["audit after remediation"]["outcome"] == "clean"
    # a new advisory about the package web-2 really has; the rebuild installs the fix; the fleet rolls onto it
    [advisory] = stages["new advisory, daily rescan"]["rows"]
    assert advisory[:3] == ["DEMO-2026-0001", "web-server 1.0-1", "1.0-2"] and advisory[3] > 0
    flagged = stages["audit by the scan rule"]
    [asg] = [row for row in flagged["rows"] if row[1] == "auto-scaling-group"]
    assert asg[3] in new_images and asg[5] == "scan condition: its highest finding severity is high, above medium"
    patched = stages["pipeline rebuilds with web-server 1.0-2: web-3"]
    assert patched["outcome"] == "2 AMIs in us-east-1"
    [patched_ami] = [row[2] for row in patched["rows"] if row[1] == "123456789012"]
    for ami, version in ((asg[3], "1.0-1"), (patched_ami, "1.0-2")):  # what dpkg recorded in each image
        listed = kiln("image", "packages", ami, "--region", "us-east-1", "--output", "json")
        assert [(p["name"], p["version"]) for p in json.loads(listed.stdout)["imagePackageList"]] == [
            ("web-server", version)]
    assert [row[1] for row in stages["remediate by the scan rule"]["rows"]] == actions
    rolled = stages["instance refresh onto the patched image"]
    assert rolled["outcome"] == "3 instances, refresh Successful"
    assert {row[3] for row in rolled["rows"]} == {patched_ami}
    assert stages["audit by the scan rule after remediation"]["outcome"] == "clean"
    assert stages["allowed images (enabled)"]["outcome"] == "refused"
    assert stages["lifecycle now"]["rows"] == [[old_ami, "deprecated", 1]]
    later = stages["lifecycle 15 days later"]
    assert later["outcome"] == "deleted" and later["rows"][0][2] == 0
    again = kiln("demo", "fleet")
    assert again.exit_code == 1 and "already ran in this KILN_HOME" in again.stderr


def test_the_text_demo_prints_a_table_per_stage_and_unknown_demos_are_refused(kiln) -> None:
    ran = kiln("demo", "fleet")
    assert ran.exit_code == 0, ran.stderr
    assert "== audit, 31 days later: " in ran.stdout and "== audit after remediation: clean" in ran.stdout
    unknown = kiln("demo", "fleets")
    assert unknown.exit_code == 2 and "'fleets' is not a demo" in unknown.stderr
