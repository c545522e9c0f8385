"""``kiln image create|cancel|builds|logs|get``: Image Builder images (builds of recipes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, progress, table

app = typer.Typer()


def outputs_table(image: dict[str, Any]) -> None:
    """The image's outputResources: one row per (region, account, AMI); a container image's URIs."""
    containers = image["outputResources"].get("containers")
    if image.get("type") == "DOCKER":
        table(["REGION", "IMAGE URI"], [(c["region"], uri) for c in containers or [] for uri in c["imageUris"]])
        return
    amis = image["outputResources"]["amis"]
    table(["REGION", "ACCOUNT", "AMI", "NAME", "DESCRIPTION"],
          [(a["region"], a.get("accountId", ""), a["image"], a.get("name", ""), a.get("description", ""))
           for a in amis])


def _workflows(arns: list[str] | None, path: Path | None) -> list[dict[str, Any]] | None:
    """``--workflow ARN``s and ``--workflows-file``'s list, as CreateImage's ``workflows``."""
    from kiln.errors import InvalidInput

    entries: list[dict[str, Any]] = [{"workflowArn": arn} for arn in arns or []]
    if path is not None:
        import yaml

        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as error:
            raise InvalidInput(f"cannot read {path}: {error}", location="--workflows-file") from None
        if not isinstance(loaded, list) or not all(isinstance(entry, dict) for entry in loaded):
            raise InvalidInput(f"{path} must hold a list of WorkflowConfiguration mappings",
                               location="--workflows-file")
        entries += loaded
    return entries or None


@app.command("create")
def create(
    recipe: str = typer.Option(None, "--recipe", help="Image or container recipe ARN (CreateImage)."),
    infrastructure: str = typer.Option(None, "--infrastructure", help="Infrastructure configuration ARN."),
    distribution: str = typer.Option(None, "--distribution", help="Distribution configuration ARN."),
    no_tests: bool = typer.Option(False, "--no-tests", help="Skip the test workflow."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Build even if identical inputs built before."),
    instance: str = typer.Option(None, "--instance", help="Capture a running or stopped instance instead."),
    name: str = typer.Option(None, "--name", help="AMI name (with --instance)."),
    description: str = typer.Option("", "--description", help="AMI description (with --instance)."),
    workflow: list[str] = typer.Option(None, "--workflow", help="Workflow ARN to run (repeatable; default: the "
                                       "managed build-image, test-image, distribute-image)."),
    workflows_file: Path = typer.Option(None, "--workflows-file", help="YAML/JSON list of WorkflowConfiguration "
                                        "({workflowArn, parameters, onFailure, parallelGroup})."),
    execution_role: str = typer.Option(None, "--execution-role", help="executionRole (recorded)."),
    approval: bool = typer.Option(False, "--approval", help="Wait for `kiln image approve|reject` after the tests "
                                  "(the managed test-and-approve-image in place of test-image)."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Build an image as the account from a recipe in --region (its distribution configuration says where else it
    goes), or create an AMI from an instance's root volume."""
    from kiln.errors import InvalidInput

    if instance:
        if recipe or infrastructure:
            raise InvalidInput("--instance cannot be combined with --recipe/--infrastructure")
        if not name:
            raise InvalidInput("--name is required with --instance", location="--name")
        from kiln.services.ec2.instances import create_image

        ami = create_image(instance, name=name, description=description or None, account=account)
        emit(output, {"ImageId": ami}, ami)
        return
    if not recipe or not infrastructure:
        raise InvalidInput("--recipe and --infrastructure are required (or --instance to capture one)")
    from kiln.services.builds.container import create_and_build_container, is_container_image
    from kiln.services.builds.workflow import create_and_build

    workflows = _workflows(workflow, workflows_file)
    if approval:
        from kiln.services.workflows.managed_approval import with_approval

        workflows = with_approval(workflows, region, where="--approval", container=is_container_image(recipe))
    request: dict[str, Any] = {"workflows": workflows, "execution_role": execution_role}
    build = create_and_build_container if is_container_image(recipe) else create_and_build
    image = build(
        recipe_arn=recipe,
        infrastructure_arn=infrastructure,
        distribution_arn=distribution,
        tests_enabled=not no_tests,
        use_cache=not no_cache,
        region=region,
        account=account,
        progress=progress,
        **request,
    )

    def text() -> None:
        typer.echo(image["arn"])
        outputs_table(image)

    emit(output, {"imageBuildVersionArn": image["arn"], "image": image}, text)


@app.command("cancel")
def cancel(arn: str = typer.Argument(..., help="Image build version ARN."), region: Region = DEFAULT_REGION,
           account: Account = "",
           output: Output = "text") -> None:
    """Cancel an image that is being built (CancelImageCreation)."""
    from kiln.services.builds.records import request_cancel

    request_cancel(arn, caller=account, region=region)
    emit(output, {"imageBuildVersionArn": arn}, arn)


@app.command("builds")
def builds(
    name: str = typer.Option(None, "--name", help="Only images of this recipe name."),
    status: str = typer.Option(None, "--status", help="Only images in this state."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """List the account's Image Builder images in the region (every build of every recipe)."""
    from kiln.services.builds.records import list_images

    found = list_images(name=name, status=status, account=account, region=region)

    def text() -> None:
        table(
            ["ARN", "STATUS", "AMIS", "CREATED"],
            [
                (
                    image["arn"],
                    image["state"]["status"],
                    ",".join(ami["image"] for ami in image["outputResources"]["amis"]),
                    image["dateCreated"],
                )
                for image in found
            ],
        )

    emit(output, {"imageSummaryList": found}, text)


@app.command("logs")
def logs(arn: str = typer.Argument(..., help="Image build version ARN."), region: Region = DEFAULT_REGION,
         account: Account = "",
         output: Output = "text") -> None:
    """The workflow steps of a build with their status, times, messages and logs."""
    from kiln.services.builds.records import get_image, list_steps

    image = get_image(arn, caller=account, region=region)
    steps = list_steps(arn, caller=account, region=region)

    def text() -> None:
        typer.echo(f"{arn}: {image['state']['status']} {image['state'].get('reason', '')}".rstrip())
        for step in steps:
            typer.echo(f"  {step['workflow']:<12} {step['name']:<24} {step['status']:<9} {step.get('message', '')}")
            log_path = step.get("logPath")
            if log_path and Path(log_path).exists():
                typer.echo(f"    log: {log_path}")

    emit(output, {"image": image, "steps": steps}, text)


@app.command("get")
def get(resource: str = typer.Argument(..., help="An image build version ARN, or an AMI id."),
        region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text") -> None:
    """Show an Image Builder image (by ARN) or an AMI (by id) the account may see in the region."""
    if resource.startswith("ami-"):
        from kiln.services.ec2.images import describe_image

        emit(output, describe_image(resource, region, account=account))
        return
    from kiln.cli.output import to_json
    from kiln.services.builds.approval import decision_of
    from kiln.services.builds.records import get_image

    image = get_image(resource, caller=account, region=region)
    shown: dict[str, object] = {"image": image, "approval": decision_of(image["arn"])}

    def text() -> None:
        typer.echo(to_json(shown))
        outputs_table(image)

    emit(output, shown, text)
