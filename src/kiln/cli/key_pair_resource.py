"""``kiln key-pair create|import|list|delete`` (``kiln.services.ec2.key_pairs``): EC2 key pairs whose
public key a VM instance launched with ``--key-name`` gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit

app = typer.Typer()


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Key pair name."),
    key_type: str = typer.Option("ed25519", "--key-type", help="ed25519 or rsa."),
    private_key_file: Path | None = typer.Option(
        None, "--private-key-file", help="Write the private key here (mode 0600) instead of printing it."),
    tag: list[str] = typer.Option([], "--tag", help="KEY=VALUE tag, repeatable."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Create a key pair (ssh-keygen); the private key is shown once and not kept."""
    import os

    from kiln.cli.resource_input import key_values
    from kiln.services.ec2 import key_pairs

    if private_key_file is not None and private_key_file.exists():
        raise typer.BadParameter(f"{private_key_file} exists already", param_hint="--private-key-file")
    result = key_pairs.create_key_pair(name, key_type=key_type, tags=key_values(tag, "--tag"), account=account,
                                       region=region)
    if private_key_file is not None:
        fd = os.open(private_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(result["KeyMaterial"])
        emit(output, {k: v for k, v in result.items() if k != "KeyMaterial"}, result["KeyPairId"])
    else:
        emit(output, result, result["KeyMaterial"].rstrip("\n"))


@app.command("import")
def import_(
    name: str = typer.Argument(..., help="Key pair name."),
    public_key_file: Path = typer.Argument(..., help="An OpenSSH public key file (ssh-ed25519 or ssh-rsa)."),
    tag: list[str] = typer.Option([], "--tag", help="KEY=VALUE tag, repeatable."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Import a public key as a key pair; prints its id."""
    from kiln.cli.resource_input import key_values
    from kiln.services.ec2 import key_pairs

    try:
        text = public_key_file.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise typer.BadParameter(f"cannot read {public_key_file}: {error}", param_hint="PUBLIC_KEY_FILE") from None
    result = key_pairs.import_key_pair(name, text, tags=key_values(tag, "--tag"), account=account, region=region)
    emit(output, result, result["KeyPairId"])


def _table(found: list[dict[str, Any]]) -> None:
    from kiln.cli.output import table

    table(("NAME", "ID", "TYPE", "FINGERPRINT", "CREATED"),
          [(k["KeyName"], k["KeyPairId"], k["KeyType"], k["KeyFingerprint"],
            k["CreateTime"].strftime("%Y-%m-%dT%H:%M:%SZ")) for k in found])


@app.command("list")
def list_(
    name: list[str] = typer.Option([], "--name", help="Only this key pair, repeatable."),
    include_public_key: bool = typer.Option(False, "--include-public-key", help="Show the public keys."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """List the account's key pairs in the region."""
    from kiln.services.ec2 import key_pairs

    result = key_pairs.describe_key_pairs(names=name, include_public_key=include_public_key, account=account,
                                          region=region)
    emit(output, result, lambda: _table(result["KeyPairs"]))


@app.command("delete")
def delete(
    key: str = typer.Argument(..., help="Key pair name or key-… id."),
    region: Region = DEFAULT_REGION,
    account: Account = "",
    output: Output = "text",
) -> None:
    """Delete a key pair (instances launched with it keep the key)."""
    from kiln.services.ec2 import key_pairs

    result = key_pairs.delete_key_pair(key, account=account, region=region)
    emit(output, result, result.get("KeyPairId", f"no key pair {key}"))
