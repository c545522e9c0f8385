"""The ``kiln`` command: noun-verb sub-commands, one module per noun under ``kiln.cli``.

Heavy imports stay inside the command functions so ``kiln --help`` is fast.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from kiln import __version__
from kiln.errors import KilnError

# noun -> help. Every module ``kiln.cli.<noun>_<part>`` adds its verbs with ``register(app)``
# to that noun's Typer; every ``kiln.cli.top_<name>`` adds top-level commands (apply, serve, demo).
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
    import kiln.cli as package

    nouns: dict[str, typer.Typer] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        prefix, _, part = info.name.partition("_")
        if not part or (prefix != "top" and prefix not in NOUNS):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if prefix == "top":
            module.register(app)
            continue
        if prefix not in nouns:
            nouns[prefix] = typer.Typer(no_args_is_help=True, help=NOUNS[prefix])
            app.add_typer(nouns[prefix], name=prefix)
        module.register(nouns[prefix])


_register_commands()


def main() -> None:
    try:
        # Without standalone mode click returns typer.Exit's code instead of raising it.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
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
    except Exception as error:  # usage errors carry their own rendering
        for module in ("typer._click", "click"):
            try:
                click = importlib.import_module(module)
            except ImportError:
                continue
            if isinstance(error, click.ClickException):
                error.show()
                sys.exit(error.exit_code)
        raise
