"""The ``kiln`` command: noun-verb sub-commands, one module per noun under ``kiln.cli``.

Heavy imports stay inside the command functions so ``kiln --help`` is fast.
"""

from __future__ import annotations

import sys

import typer

from kiln import __version__
from kiln.errors import KilnError
from kiln.services.startup import install as install_startup

# noun -> help; ``_register_commands`` lists the modules that add each noun's verbs.
NOUNS: dict[str, str] = {
    "component": "AWSTOE component documents: validate, run, create, list.",
    "recipe": "Image recipes: parent image plus ordered components.",
    "infrastructure": "Infrastructure configurations: build sandbox settings.",
    "distribution": "Distribution configurations: names, tags, sharing.",
    "pipeline": "Image pipelines: scheduled and on-demand builds.",
    "image": "Images and AMIs: build, import, list, export, deregister.",
    "snapshot": "Snapshots: the layers that make a root volume.",
    "instance": "Instances: sandboxes launched from AMIs.",
    "store": "The image store: fsck, garbage collection.",
    "lifecycle": "Lifecycle policies: deprecate, disable, delete.",
    "compliance": "Compliance: which images fleets may launch.",
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


def _register_commands() -> None:
    from kiln.cli import (
        component_document,
        component_resource,
        distribution_resource,
        image_build,
        image_store,
        infrastructure_resource,
        instance_runtime,
        lifecycle_policy,
        pipeline_resource,
        recipe_resource,
        snapshot_store,
        store_admin,
        top_apply,
        top_demo,
        top_events,
        top_scheduler,
    )

    for module in (top_apply, top_demo, top_events, top_scheduler):
        module.register(app)
    nouns = {
        "component": (component_document, component_resource),
        "recipe": (recipe_resource,),
        "infrastructure": (infrastructure_resource,),
        "distribution": (distribution_resource,),
        "pipeline": (pipeline_resource,),
        "image": (image_build, image_store),
        "snapshot": (snapshot_store,),
        "instance": (instance_runtime,),
        "store": (store_admin,),
        "lifecycle": (lifecycle_policy,),
    }
    for noun, modules in nouns.items():
        group = typer.Typer(no_args_is_help=True, help=NOUNS[noun])
        app.add_typer(group, name=noun)
        for module in modules:
            module.register(group)


_register_commands()
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
        code = app(args=args, prog_name="kiln", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except KilnError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        if error.hint:
            typer.echo(f"hint: {error.hint}", err=True)
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
