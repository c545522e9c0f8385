"""The ``kiln`` command: noun-verb sub-commands, one module per noun under ``kiln.cli``.

Heavy imports stay inside the command functions so ``kiln --help`` is fast.
"""

from __future__ import annotations

import sys

import typer

from kiln import __version__
from kiln.cli.reads import only_reads
from kiln.ec2_errors import Ec2Error
from kiln.errors import KilnError
from kiln.services.startup import install as install_startup

# noun -> help; ``_compose`` lists the modules that add each noun's verbs.
NOUNS: dict[str, str] = {
    "component": "AWSTOE component documents: validate, run, create, list.",
    "recipe": "Image recipes: parent image plus ordered components.",
    "container-recipe": "Container recipes: a Dockerfile template, parent image and components; OCI images.",
    "infrastructure": "Infrastructure configurations: build sandbox settings.",
    "distribution": "Distribution configurations: names, tags, sharing.",
    "pipeline": "Image pipelines: scheduled and on-demand builds.",
    "image": "Images and AMIs: build, import, list, export, deregister.",
    "snapshot": "Snapshots: the layers that make a root volume.",
    "instance": "Instances: sandboxes launched from AMIs, or virtual machines booting them (--vm).",
    "key-pair": "EC2 key pairs: SSH public keys a VM instance gets (--key-name).",
    "store": "The image store: fsck, garbage collection.",
    "account": "Accounts and their access keys.",
    "org": "Organizations: OUs and member accounts (what OU and organization sharing follows).",
    "region": "Regions: one image store each.",
    "launch-template": "Launch templates: versioned launch settings ($Default, $Latest, resolve:ssm:).",
    "asg": "Auto Scaling groups: instances kept at a desired capacity from a launch template; instance refresh.",
    "parameter": "Parameters (SSM Parameter Store): versioned values, AMI ids for launch templates.",
    "lifecycle": "Lifecycle policies: deprecate, disable, delete.",
    "compliance": "Fleet compliance: audit the images in use against a rule (age, approval, allowed); remediate.",
    "workflow": "Workflows: build, test and distribution documents; executions; WaitForAction steps.",
    "vulndb": "Advisory data (OSV): import, update, status; findings and pending security updates of package lists.",
}

app = typer.Typer(
    name="kiln",
    help="Bake, test, ship and retire golden machine images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kiln {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show version."),
) -> None:
    """Bake, test, ship and retire golden machine images."""


def _noun(noun: str, *parts: typer.Typer) -> typer.Typer:
    """The ``kiln NOUN`` group: the commands of each part (a module's Typer app) in order."""
    group = typer.Typer(no_args_is_help=True, help=NOUNS[noun])
    for part in parts:
        group.add_typer(part)  # without a name: its commands join the group
    app.add_typer(group, name=noun)
    return group


def _compose() -> None:
    """Every command, explicitly: top-level verbs first, then the nouns."""
    from kiln.cli import (
        account_resource,
        asg_resource,
        compliance_resource,
        component_document,
        component_resource,
        container_recipe_resource,
        distribution_resource,
        image_allowed,
        image_approval,
        image_build,
        image_inventory,
        image_lineage,
        image_publish,
        image_references,
        image_scan,
        image_store,
        infrastructure_resource,
        instance_runtime,
        key_pair_resource,
        launch_template_resource,
        lifecycle_policy,
        org_resource,
        parameter_resource,
        pipeline_resource,
        recipe_resource,
        region_resource,
        snapshot_store,
        store_admin,
        top_apply,
        top_demo,
        top_events,
        top_scheduler,
        top_serve,
        vulndb_resource,
        workflow_resource,
    )

    app.command("apply")(top_apply.apply)
    top_demo.register(app)
    app.command("scheduler")(top_scheduler.scheduler)
    app.command("serve")(top_serve.serve)
    app.add_typer(top_events.app, name="events")
    component_document.register(_noun("component", component_resource.app))
    _noun("recipe", recipe_resource.app)
    _noun("container-recipe", container_recipe_resource.app)
    _noun("infrastructure", infrastructure_resource.app)
    _noun("distribution", distribution_resource.app)
    _noun("pipeline", pipeline_resource.app)
    image = _noun("image", image_build.app, image_store.app, image_references.app, image_publish.app,
                  image_lineage.app)
    image.add_typer(image_store.block_public_access, name="block-public-access")
    image.add_typer(image_lineage.watermark, name="watermark")
    image.add_typer(image_allowed.app, name="allowed")
    image.add_typer(image_inventory.app)
    image.add_typer(image_scan.app)
    image.add_typer(image_approval.app)
    _noun("snapshot", snapshot_store.app)
    _noun("instance", instance_runtime.app)
    _noun("key-pair", key_pair_resource.app)
    _noun("store", store_admin.app)
    _noun("lifecycle", lifecycle_policy.app)
    _noun("account", account_resource.app).add_typer(account_resource.keys, name="keys")
    _noun("org", org_resource.app)
    _noun("region", region_resource.app)
    _noun("parameter", parameter_resource.app)
    _noun("launch-template", launch_template_resource.app)
    _noun("asg", asg_resource.app)
    _noun("compliance", compliance_resource.app)
    _noun("workflow", workflow_resource.app)
    vulndb = _noun("vulndb", vulndb_resource.app)
    vulndb.add_typer(vulndb_resource.source_app, name="source")
    vulndb.add_typer(vulndb_resource.mirror_app, name="mirror")


_compose()
install_startup()


def _click_errors() -> tuple[type[Exception], ...]:
    """Usage errors: click's, and those of the click that recent Typer releases carry inside."""
    import click

    errors: list[type[Exception]] = [click.ClickException]
    try:
        from typer._click.exceptions import ClickException as VendoredClickException
    except ImportError:
        pass
    else:
        errors.append(VendoredClickException)
    return tuple(errors)


_CLICK_ERRORS = _click_errors()


def run(args: list[str] | None = None) -> int:
    """Run one ``kiln`` command line (``args`` without the program name; None: ``sys.argv``) and return
    its exit code, printing errors as one line plus a hint. ``main`` and in-process tests share it."""
    try:
        # Without standalone mode click returns typer.Exit's code instead of raising it.
        def invoke() -> object:
            return app(args=args, prog_name="kiln", standalone_mode=False)

        if only_reads(sys.argv[1:] if args is None else args):
            from kiln.services.common.unit import only_reading

            code = only_reading(invoke)
        else:
            code = invoke()
        return code if isinstance(code, int) else 0
    except KilnError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        if error.hint:
            typer.echo(f"hint: {error.hint}", err=True)
        if isinstance(error, Ec2Error) and error.context:
            typer.echo(f"refused {error.context}", err=True)
        return error.exit_code
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except _CLICK_ERRORS as error:  # usage errors carry their own rendering
        error.show()
        return error.exit_code


def main() -> None:
    sys.exit(run())
