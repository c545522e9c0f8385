"""``kiln serve``: the HTTP API (Image Builder, EC2, STS, Organizations) and the scheduler, in one process."""

from __future__ import annotations

from pathlib import Path

import typer

DEFAULT_PORT = 8080


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="TCP port; 0 picks a free one (printed on stdout)."),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="PEM certificate: serve HTTPS."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="PEM private key of --tls-cert."),
    scheduler: bool = typer.Option(True, "--scheduler/--no-scheduler",
                                   help="Run the pipeline scheduler in this process (the default)."),
) -> None:
    """Serve the AWS APIs kiln speaks, signed with SigV4 by kiln's access keys, until SIGTERM.

    The first line on stdout says where it listens. On the first start with no access key at all, a key
    for the default account is created and shown once on stderr.
    """
    from kiln.api.server import bind, serve, url
    from kiln.errors import InvalidInput
    from kiln.services.accounts.accounts import first_start_key

    if (tls_cert is None) != (tls_key is None):
        raise InvalidInput("--tls-cert and --tls-key go together", location="--tls-key" if tls_cert else "--tls-cert")
    key = first_start_key()
    if key is not None:
        typer.echo(f"created an access key for account {key['AccountId']} (the secret is shown only now):", err=True)
        typer.echo(f"  AWS_ACCESS_KEY_ID={key['AccessKeyId']}", err=True)
        typer.echo(f"  AWS_SECRET_ACCESS_KEY={key['SecretAccessKey']}", err=True)
    try:
        sock = bind(host, port)
    except OSError as error:
        raise InvalidInput(f"cannot listen on {host}:{port}: {error.strerror}", location="--port") from None
    address = url(sock, tls=tls_cert is not None)
    serve(
        sock,
        tls_cert=str(tls_cert) if tls_cert else None,
        tls_key=str(tls_key) if tls_key else None,
        on_ready=lambda: typer.echo(f"kiln serve listening on {address}"),
        scheduler=scheduler,
        say=lambda line: typer.echo(line, err=True),
    )
