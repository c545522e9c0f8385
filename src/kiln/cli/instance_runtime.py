"""``kiln instance run|exec|stop|start|reboot|terminate|list|describe|console|console-output|create-image``
(``kiln.services.ec2.instances``); ``run --vm`` boots the AMI as a QEMU virtual machine."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit

app = typer.Typer()

InstanceIds = Annotated[list[str], typer.Argument(help="Instance ids.")]
Force = Annotated[bool, typer.Option(help="No grace period: SIGKILL at once.")]


def _changed(output: str, result: dict[str, Any]) -> None:
    changes = result["Instances"]
    emit(output, result, "\n".join(f"{c['InstanceId']} {c['CurrentState']['Name']}" for c in changes))


def _network(instance: dict[str, Any]) -> str:
    """A sandbox's network mode; a VM's: QEMU's user-mode network and its forwarded SSH port."""
    kiln = instance["Kiln"]
    if kiln.get("Hypervisor") != "qemu":
        return str(kiln["Network"])
    port = kiln.get("SshPort")
    return f"{kiln['Network']} ssh=127.0.0.1:{port}" if port else str(kiln["Network"])


def _instances_table(found: list[dict[str, Any]]) -> None:
    from kiln.cli.output import table

    table(
        ("INSTANCE", "IMAGE", "STATE", "TYPE", "ROOT", "NETWORK", "LAUNCHED"),
        [
            (
                i["InstanceId"],
                i["ImageId"] or "-",
                i["State"]["Name"],
                i["InstanceType"],
                i["RootDeviceType"],
                _network(i),
                i["LaunchTime"].strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            for i in found
        ],
    )


@app.command("run")
def run(
    ami: str | None = typer.Argument(None, help="AMI id to launch (with --launch-template: overrides its ImageId)."),
    launch_template: str | None = typer.Option(
        None, "--launch-template", help="ID|NAME[,VERSION]: launch from a launch template version (default $Default)."
    ),
    network: str = typer.Option(
        "none", help="none (loopback only) or host (outbound through the host, not to its local addresses)."
    ),
    host_local_network: bool = typer.Option(
        False, "--host-local-network", help="With --network host: the host's loopback (as 10.0.2.2; "
        "169.254.0.2 in a --vm instance) and link-local addresses are reachable too."
    ),
    root_device_type: str | None = typer.Option(
        None, "--root-device-type", help="ebs or instance-store (default: the AMI's)."
    ),
    instance_type: str | None = typer.Option(
        None, "--instance-type", help="EC2 instance type (default: the template's, else t3.micro)."
    ),
    region: Region = DEFAULT_REGION,
    tag: list[str] = typer.Option([], "--tag", help="KEY=VALUE tag, repeatable."),
    vm: bool = typer.Option(False, "--vm", help="Boot the AMI's disk as a virtual machine under QEMU (KVM when "
                            "usable, else TCG) instead of a sandbox; the AMI must be bootable."),
    user_data: str | None = typer.Option(None, "--user-data", help="With --vm: user data for cloud-init; "
                                         "file://PATH reads a file."),
    key_name: str | None = typer.Option(None, "--key-name", help="With --vm: the key pair whose public key "
                                        "cloud-init installs."),
    http_tokens: str | None = typer.Option(None, "--http-tokens", help="With --vm: optional or required "
                                           "(IMDSv2 only); default required when the AMI's ImdsSupport is v2.0."),
    volume_size: int | None = typer.Option(None, "--volume-size", help="With --vm: root volume size in GiB."),
    delete_on_termination: bool = typer.Option(True, "--delete-on-termination/--keep-root-volume",
                                               help="With --vm: delete the root volume on terminate."),
    account: Account = "",
    output: Output = "text",
) -> None:
    """Launch an instance from an AMI the account may launch (its own, public or shared), or from a
    launch template; prints its id."""
    from kiln.cli.resource_input import key_values
    from kiln.services.ec2 import instances

    tags = key_values(tag, "--tag")
    vm_options = _vm_options(vm, user_data, key_name, http_tokens, volume_size, delete_on_termination)
    if vm_options is not None and launch_template is not None:
        raise typer.BadParameter("--vm launches from an AMI, not a launch template", param_hint="--vm")
    if launch_template is not None:
        from kiln.services.fleet.launch import run_from_template
        from kiln.services.fleet.launch_templates import TemplateRef

        template, _, version = launch_template.partition(",")
        instance = run_from_template(
            TemplateRef.parse(template), version or None, image_id=ami, instance_type=instance_type, tags=tags,
            network=network, host_local=host_local_network, root_device_type=root_device_type, account=account,
            region=region,
        )
    elif ami is None:
        raise typer.BadParameter("give an AMI id or --launch-template", param_hint="AMI")
    else:
        instance = instances.run_instance(
            ami,
            region=region,
            instance_type=instance_type or "t3.micro",
            root_device_type=root_device_type,
            network=network,
            host_local=host_local_network,
            tags=tags,
            account=account,
            vm=vm_options,
        )
    emit(output, instances.describe_instance(instance.id, account=account), instance.id)


def _vm_options(vm: bool, user_data: str | None, key_name: str | None, http_tokens: str | None,
                volume_size: int | None, delete_on_termination: bool) -> Any:
    from kiln.services.ec2.instances import VmOptions

    given = {"--user-data": user_data, "--key-name": key_name, "--http-tokens": http_tokens,
             "--volume-size": volume_size, "--keep-root-volume": None if delete_on_termination else True}
    if not vm:
        for name, value in given.items():
            if value is not None:
                raise typer.BadParameter(f"{name} applies to VM instances: add --vm", param_hint=name)
        return None
    data: bytes | None = None
    if user_data is not None and user_data.startswith("file://"):
        path = user_data.removeprefix("file://")
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as error:
            raise typer.BadParameter(f"cannot read {path}: {error.strerror}", param_hint="--user-data") from None
    elif user_data is not None:
        data = user_data.encode()
    return VmOptions(user_data=data, key_name=key_name, http_tokens=http_tokens,
                     delete_on_termination=delete_on_termination, volume_size=volume_size)


@app.command("exec")
def exec_(
    instance_id: str = typer.Argument(..., help="Instance id."),
    command: list[str] = typer.Argument(..., help="Command and arguments (after --)."),
    timeout: float | None = typer.Option(None, help="Kill the command after this many seconds."),
    env: list[str] = typer.Option([], "--env", "-e", help="KEY=VALUE environment variable, repeatable."),
    cwd: str | None = typer.Option(None, "--cwd", help="Working directory inside the instance."),
    via: str = typer.Option("auto", "--via", help="A VM: ssh, serial (kiln's agent on a virtio-serial port, no "
                            "login) or auto (SSH when the guest's SSH server answers, else serial)."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Run a command inside a running instance (a VM: as root, over SSH or kiln's serial agent); exits with
    the command's exit code.

    Give the command after ``--``: ``kiln instance exec i-… -- sh -c 'echo hi'``.
    """
    from kiln.cli.output import check_format
    from kiln.cli.resource_input import key_values
    from kiln.services.ec2 import instances

    as_json = check_format(output) == "json"

    def write(stream: Any) -> Any:
        def sink(text: str) -> None:
            stream.write(text)
            stream.flush()

        return None if as_json else sink

    result = instances.exec_command(
        instance_id,
        command,
        env=key_values(env, "--env"),
        cwd=cwd,
        timeout=timeout,
        on_stdout=write(sys.stdout),
        on_stderr=write(sys.stderr),
        account=account,
        region=region,
        via=via,
    )
    if as_json:
        emit(output, result)
    elif result["TimedOut"]:
        sys.stderr.write(f"kiln: command timed out after {timeout} s\n")
    # SystemExit, not typer.Exit: click in non-standalone mode returns Exit's code instead.
    sys.exit(result["ExitCode"])


@app.command("stop")
def stop(
    instance_ids: InstanceIds, force: Force = False, region: Region = DEFAULT_REGION, account: Account = "",
    output: Output = "text",
) -> None:
    """Stop EBS-backed instances (the root volume is kept)."""
    from kiln.services.ec2 import instances

    _changed(output, instances.stop_instances(instance_ids, force=force, account=account, region=region))


@app.command("start")
def start(
    instance_ids: InstanceIds, region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text"
) -> None:
    """Start stopped instances."""
    from kiln.services.ec2 import instances

    _changed(output, instances.start_instances(instance_ids, account=account, region=region))


@app.command("reboot")
def reboot(
    instance_ids: InstanceIds, region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text"
) -> None:
    """Restart instances' processes (root volume kept)."""
    from kiln.services.ec2 import instances

    _changed(output, instances.reboot_instances(instance_ids, account=account, region=region))


@app.command("terminate")
def terminate(
    instance_ids: InstanceIds, force: Force = False, region: Region = DEFAULT_REGION, account: Account = "",
    output: Output = "text",
) -> None:
    """Terminate instances: processes end and the root volume is deleted."""
    from kiln.services.ec2 import instances

    _changed(output, instances.terminate_instances(instance_ids, force=force, account=account, region=region))


@app.command("list")
def list_(
    state: list[str] = typer.Option([], "--state", help="Only instances in this state, repeatable."),
    image_id: str | None = typer.Option(None, "--image-id", help="Only instances of this AMI."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """List the account's instances."""
    from kiln.services.ec2 import instances

    result = instances.describe_instances(states=state, image_id=image_id, account=account, region=region)
    emit(output, result, lambda: _instances_table(result["Instances"]))


@app.command("describe")
def describe(
    instance_id: str = typer.Argument(..., help="Instance id."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Show one instance."""
    from kiln.cli.output import to_json
    from kiln.services.ec2 import instances

    data = instances.describe_instance(instance_id, account=account, region=region)
    emit(output, data, to_json(data))


@app.command("console")
def console(
    instance_id: str = typer.Argument(..., help="Instance id."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Print the instance's console output (its init's stdout and stderr; a VM's serial console)."""
    from kiln.services.ec2 import instances

    result = instances.get_console_output(instance_id, account=account, region=region)
    emit(output, result, result["Output"].rstrip("\n"))


@app.command("console-output")
def console_output(
    instance_id: str = typer.Argument(..., help="Instance id."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """EC2 GetConsoleOutput: a VM's serial console (a sandbox's init output)."""
    console(instance_id, region=region, account=account, output=output)


@app.command("create-image")
def create_image(
    instance_id: str = typer.Argument(..., help="Instance id."),
    name: str = typer.Option(..., help="Name of the new AMI."),
    description: str | None = typer.Option(None, help="Description of the new AMI."),
    no_reboot: bool = typer.Option(False, "--no-reboot", help="Capture without stopping."),
    tag: list[str] = typer.Option([], "--tag", help="KEY=VALUE tag, repeatable."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Capture the instance's root volume as a new AMI of the account; prints its id."""
    from kiln.cli.resource_input import key_values
    from kiln.services.ec2 import instances

    image_id = instances.create_image(
        instance_id,
        name=name,
        description=description,
        tags=key_values(tag, "--tag"),
        no_reboot=no_reboot,
        account=account,
        region=region,
    )
    emit(output, {"ImageId": image_id}, image_id)
