"""``kiln pipeline …`` as a user runs it: real processes, exit codes, JSON on stdout."""

from __future__ import annotations

import json
from pathlib import Path

from tests.pipelines.conftest import AMI, SELF, component, infrastructure, recipe


def test_pipeline_commands(kiln, tmp_path: Path) -> None:
    component("app", "1.0.0")
    recipe_arn = recipe("web", "1.0.0", AMI, ["component/app/1.0.0"])
    infra = infrastructure()
    body = tmp_path / "pipeline.yaml"
    body.write_text(
        f"kind: ImagePipeline\nname: nightly\nimageRecipeArn: {recipe_arn}\n"
        f"infrastructureConfigurationArn: {infra}\n"
        "schedule:\n  scheduleExpression: cron(0 3 ? * MON-FRI *)\n  timezone: Europe/Paris\n"
    )
    created = kiln("pipeline", "create", "--cli-input-yaml", str(body))
    assert created.exit_code == 0, created.stderr
    arn = f"{SELF}:image-pipeline/nightly"
    assert created.stdout.strip() == arn

    got = json.loads(kiln("pipeline", "get", arn, "--output", "json").stdout)["imagePipeline"]
    assert got["schedule"]["timezone"] == "Europe/Paris"
    listed = kiln("pipeline", "list")
    assert arn in listed.stdout and "ENABLED" in listed.stdout

    schedule = json.loads(kiln("pipeline", "schedule", arn, "--next", "3", "--output", "json").stdout)
    assert len(schedule["nextRuns"]) == 3
    assert all(t.endswith("+01:00") and "T03:00:00" in t for t in schedule["nextRuns"])
    assert schedule["nextRuns"][0].startswith(got["dateNextRun"][:10])

    update = tmp_path / "update.json"
    update.write_text(json.dumps({"imagePipelineArn": arn, "imageRecipeArn": recipe_arn,
                                  "infrastructureConfigurationArn": infra, "status": "DISABLED"}))
    assert kiln("pipeline", "update", "--cli-input-json", f"file://{update}").exit_code == 0
    # UpdateImagePipeline replaces the configuration: a body without schedule removes it.
    assert kiln("pipeline", "schedule", arn).stdout.strip() == "no schedule"
    assert json.loads(kiln("pipeline", "get", arn, "--output", "json").stdout)["imagePipeline"]["status"] == "DISABLED"

    # A manual start builds with the real build workflow; the recipe's AMI does not exist in this
    # store, so the build fails — the image, its pipeline link and the execution record stay.
    started = kiln("pipeline", "start", arn, "--tags", "run=cli")
    image_arn = f"{SELF}:image/web/1.0.0/1"
    assert started.exit_code != 0
    assert started.stdout.strip() == image_arn  # what was created, printed even though the build failed
    assert any(line.startswith(f"error: image {image_arn} is FAILED") for line in started.stderr.splitlines())
    images = json.loads(kiln("pipeline", "images", arn, "--output", "json").stdout)["imageSummaryList"]
    assert [(i["arn"], i["state"]["status"], i["tags"]) for i in images] == [(image_arn, "FAILED", {"run": "cli"})]
    executions = json.loads(kiln("pipeline", "executions", arn, "--output", "json").stdout)["executions"]
    assert [(e["trigger"], e["decision"], e["imageArn"], e["outcome"]) for e in executions] == [
        ("MANUAL", "STARTED", image_arn, "FAILED")]

    refused = kiln("infrastructure", "delete", infra)
    assert refused.exit_code != 0 and arn in refused.stderr
    deleted = kiln("pipeline", "delete", arn, "--output", "json")
    assert json.loads(deleted.stdout)["imagePipelineArn"] == arn
    missing = kiln("pipeline", "get", arn)
    assert missing.exit_code != 0 and "does not exist" in missing.stderr


def test_bad_schedule_is_one_line_error(kiln, tmp_path: Path) -> None:
    component("app", "1.0.0")
    recipe_arn = recipe("web", "1.0.0", AMI, ["component/app/1.0.0"])
    body = json.dumps({"name": "bad", "imageRecipeArn": recipe_arn, "infrastructureConfigurationArn": infrastructure(),
                       "schedule": {"scheduleExpression": "cron(0 3 * *)"}})
    result = kiln("pipeline", "create", "--cli-input-json", body)
    assert result.exit_code != 0
    assert "schedule.scheduleExpression" in result.stderr.splitlines()[0]
