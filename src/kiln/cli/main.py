"""The ``kiln`` command: noun-verb sub-commands, one module per noun under ``kiln.cli``.

Each noun module exposes ``app`` (a Typer) or ``register(app)`` for top-level verbs; heavy
imports stay inside the command functions so ``kiln --help`` is fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import typer

from kiln import __version__
from kiln.errors import KilnError

# noun -> help; a module that does not exist yet is simply not offered.
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
# modules that add top-level commands (apply, serve, demo, scheduler, events) via register(app)
TOP_LEVEL = ("apply", "serve", "demo", "scheduler", "events")

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


def _module(name: str):  # type: ignore[no-untyped-def]
    full = f"kiln.cli.{name}"
    if importlib.util.find_spec(full) is None:
        return None
    return importlib.import_module(full)


for _noun, _help in NOUNS.items():
    _mod = _module(_noun)
    if _mod is not None:
        app.add_typer(_mod.app, name=_noun, help=_help)
for _name in TOP_LEVEL:
    _mod = _module(_name)
    if _mod is not None:
        _mod.register(app)


def main() -> None:
    try:
        app(standalone_mode=False)
    except KilnError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        if error.hint:
            typer.echo(f"hint: {error.hint}", err=True)
        sys.exit(error.exit_code)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as error:  # click usage errors carry their own rendering
        import click

        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(error.exit_code)
        raise
