"""``kiln instance run|exec|stop|start|reboot|terminate|list|describe|console|create-image``."""

from __future__ import annotations

import sys
from typing import Any

import typer

from kiln.cli.output import OutputFormat, emit
from kiln.errors import InvalidInput
from kiln.home import DEFAULT_REGION


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, pair_value = value.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{value!r} is not KEY=VALUE", location=option)
        pairs[key] = pair_value
    return pairs


def _tags(values: list[str]) -> dict[str, str]:
    return _pairs(values, "--tag")


def _change(verb: str, instance_ids: list[str], output: str, force: bool = False) -> None:
    from kiln.runtime import instances

    action = {
        "stop": lambda i: instances.stop(i, force=force),
        "start": instances.start,
        "reboot": instances.reboot,
        "terminate": lambda i: instances.terminate(i, force=force),
    }[verb]
    changes = []
    for instance_id in instance_ids:
        previous = instances.get(instance_id).describe()["State"]
        current = action(instance_id).describe()["State"]
        changes.append({"InstanceId": instance_id, "PreviousState": previous, "CurrentState": current})
    emit(
        output,
        {"Instances": changes},
        "\n".join(f"{c['InstanceId']} {c['CurrentState']['Name']}" for c in changes),
    )


def _table(found: list[Any]) -> None:
    """Instances as a table; ids are never shortened (they are what the user copies)."""
    from rich.console import Console
    from rich.table import Table

    grid = Table(show_edge=False, header_style="bold")
    for column in ("INSTANCE", "IMAGE", "STATE", "TYPE", "ROOT", "NETWORK", "LAUNCHED"):
        grid.add_column(column, no_wrap=column in ("INSTANCE", "IMAGE"))
    for i in found:
        launched = i.launch_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        grid.add_row(
            i.id, i.image_id or "-", i.state, i.instance_type, i.root_device_type, i.network, launched
        )
    Console(soft_wrap=True).print(grid)


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        ami: str = typer.Argument(..., help="AMI id to launch."),
        network: str = typer.Option("none", help="none (loopback only) or host."),
        root_device_type: str | None = typer.Option(
            None, "--root-device-type", help="ebs or instance-store (default: the AMI's)."
        ),
        instance_type: str = typer.Option("t3.micro", "--instance-type", help="EC2 instance type."),
        region: str = typer.Option(DEFAULT_REGION, help="Region (image store)."),
        tag: list[str] = typer.Option([], "--tag", help="KEY=VALUE tag, repeatable."),
        output: OutputFormat = "text",
    ) -> None:
        """Launch an instance from an AMI; prints its id."""
        from kiln.services.ec2 import instances as service
        instance = service.run_instance(
            ami,
            region=region,
            instance_type=instance_type,
            root_device_type=root_device_type,
            network=network,
            tags=_tags(tag),
        )
        emit(output, instance.describe(), instance.id)

    @app.command("exec")
    def exec_(
        instance_id: str = typer.Argument(..., help="Instance id."),
        command: list[str] = typer.Argument(..., help="Command and arguments (after --)."),
        timeout: float | None = typer.Option(None, help="Kill the command after this many seconds."),
        env: list[str] = typer.Option([], "--env", "-e", help="KEY=VALUE environment variable, repeatable."),
        cwd: str | None = typer.Option(None, "--cwd", help="Working directory inside the instance."),
        output: OutputFormat = "text",
    ) -> None:
        """Run a command inside a running instance; exits with the command's exit code.

        Give the command after ``--``: ``kiln instance exec i-… -- sh -c 'echo hi'``.
        """
        from kiln.cli.output import check_format
        from kiln.runtime.exec import exec_in

        as_json = check_format(output) == "json"

        def write(stream: Any) -> Any:
            def sink(text: str) -> None:
                stream.write(text)
                stream.flush()

            return None if as_json else sink

        result = exec_in(
            instance_id,
            command,
            env=_pairs(env, "--env"),
            cwd=cwd,
            timeout=timeout,
            on_stdout=write(sys.stdout),
            on_stderr=write(sys.stderr),
        )
        if as_json:
            emit(
                output,
                {
                    "InstanceId": instance_id,
                    "ExitCode": result.exit_code,
                    "TimedOut": result.timed_out,
                    "Stdout": result.stdout,
                    "Stderr": result.stderr,
                },
            )
        elif result.timed_out:
            sys.stderr.write(f"kiln: command timed out after {timeout} s\n")
        # SystemExit, not typer.Exit: click in non-standalone mode returns Exit's code instead.
        sys.exit(result.exit_code)

    @app.command("stop")
    def stop(
        instance_ids: list[str] = typer.Argument(..., help="Instance ids."),
        force: bool = typer.Option(False, help="No grace period: SIGKILL at once."),
        output: OutputFormat = "text",
    ) -> None:
        """Stop EBS-backed instances (the root volume is kept)."""
        _change("stop", instance_ids, output, force)

    @app.command("start")
    def start(
        instance_ids: list[str] = typer.Argument(..., help="Instance ids."),
        output: OutputFormat = "text",
    ) -> None:
        """Start stopped instances."""
        _change("start", instance_ids, output)

    @app.command("reboot")
    def reboot(
        instance_ids: list[str] = typer.Argument(..., help="Instance ids."),
        output: OutputFormat = "text",
    ) -> None:
        """Restart instances' processes (root volume kept)."""
        _change("reboot", instance_ids, output)

    @app.command("terminate")
    def terminate(
        instance_ids: list[str] = typer.Argument(..., help="Instance ids."),
        force: bool = typer.Option(False, help="No grace period: SIGKILL at once."),
        output: OutputFormat = "text",
    ) -> None:
        """Terminate instances: processes end and the root volume is deleted."""
        _change("terminate", instance_ids, output, force)

    @app.command("list")
    def list_(
        state: list[str] = typer.Option([], "--state", help="Only instances in this state, repeatable."),
        image_id: str | None = typer.Option(None, "--image-id", help="Only instances of this AMI."),
        output: OutputFormat = "text",
    ) -> None:
        """List instances."""
        from kiln.runtime import instances

        found = instances.list_instances(states=state or None, image_id=image_id)
        emit(
            output,
            {"Instances": [i.describe() for i in found]},
            lambda: _table(found),
        )

    @app.command("describe")
    def describe(
        instance_id: str = typer.Argument(..., help="Instance id."),
        output: OutputFormat = "text",
    ) -> None:
        """Show one instance."""
        from kiln.cli.output import to_json
        from kiln.runtime import instances

        data = instances.get(instance_id).describe()
        emit(output, data, to_json(data))

    @app.command("console")
    def console(
        instance_id: str = typer.Argument(..., help="Instance id."),
        output: OutputFormat = "text",
    ) -> None:
        """Print the instance's console output (its init's stdout and stderr)."""
        from kiln.runtime import instances

        path = instances.get(instance_id).console_log
        text = path.read_text(errors="replace") if path.exists() else ""
        emit(output, {"InstanceId": instance_id, "Output": text}, text.rstrip("\n"))

    @app.command("create-image")
    def create_image(
        instance_id: str = typer.Argument(..., help="Instance id."),
        name: str = typer.Option(..., help="Name of the new AMI."),
        description: str | None = typer.Option(None, help="Description of the new AMI."),
        no_reboot: bool = typer.Option(False, "--no-reboot", help="Capture without stopping."),
        tag: list[str] = typer.Option([], "--tag", help="KEY=VALUE tag, repeatable."),
        output: OutputFormat = "text",
    ) -> None:
        """Capture the instance's root volume as a new AMI; prints its id."""
        from kiln.services.ec2 import instances as service
        image_id = service.create_image(
            instance_id, name=name, description=description, tags=_tags(tag), no_reboot=no_reboot
        )
        emit(output, {"ImageId": image_id}, image_id)
