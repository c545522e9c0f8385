"""Where a component document comes from: inline ``data``, a ``file://`` URI or ``s3://bucket/key``.

S3 goes through boto3 with the normal AWS credential chain (environment, ``AWS_PROFILE``, shared
credentials and config files, instance metadata) and an endpoint from ``--endpoint-url``, else
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (moto, MinIO).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from kiln.errors import InvalidInput, NotFound

MAX_DOCUMENT_BYTES = 1024 * 1024


def _decode(raw: bytes, uri: str) -> str:
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(
            f"component document at {uri} is larger than {MAX_DOCUMENT_BYTES} bytes", location="uri"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"component document at {uri} is not UTF-8 text", location="uri") from None


def _read_file(uri: str, base_dir: Path | None) -> str:
    parsed = urlparse(uri)
    # file:///abs, file://localhost/abs, file:rel and file://rel/path (a relative path) all work.
    host = "" if parsed.netloc in ("", "localhost") else parsed.netloc
    path = Path(unquote(host + parsed.path))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        return _decode(path.read_bytes(), uri)
    except FileNotFoundError:
        raise NotFound(f"component document {path} does not exist", location="uri") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory, not a component document", location="uri") from None


NO_CREDENTIALS_HINT = (
    "configure AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or `aws configure`), "
    "or give the document inline as `data` (kiln component create --data-file FILE)"
)


def _read_s3(uri: str, endpoint_url: str | None) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

    parsed = urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if not bucket or not key:
        raise InvalidInput(f"{uri!r} is not s3://bucket/key", location="uri")
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    try:
        # a fresh session reads the credential chain now (boto3's default session keeps what it found first)
        client = boto3.session.Session().client("s3", endpoint_url=endpoint)
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read(MAX_DOCUMENT_BYTES + 1)
    except (NoCredentialsError, PartialCredentialsError) as error:
        found = "no AWS credentials were found" if isinstance(error, NoCredentialsError) else str(error)
        raise InvalidInput(f"cannot read {uri}: {found}", location="uri", hint=NO_CREDENTIALS_HINT) from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise NotFound(f"{uri} does not exist ({code})", location="uri") from None
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "ExpiredToken"):
            raise InvalidInput(f"cannot read {uri}: {code} (the AWS credentials in use may not read it)",
                               location="uri", hint=NO_CREDENTIALS_HINT) from None
        raise InvalidInput(f"cannot read {uri}: {code or error}", location="uri") from None
    except (BotoCoreError, ValueError) as error:  # ValueError: a malformed endpoint URL
        raise InvalidInput(f"cannot read {uri}: {error}", location="uri") from None
    return _decode(body, uri)


def load_component_data(uri: str, *, base_dir: Path | None = None, endpoint_url: str | None = None) -> str:
    """The document text behind ``uri``; relative ``file:`` paths are taken from ``base_dir``;
    ``endpoint_url`` overrides the S3 endpoint from the environment."""
    scheme = urlparse(uri).scheme
    if scheme == "file":
        return _read_file(uri, base_dir)
    if scheme == "s3":
        return _read_s3(uri, endpoint_url)
    raise InvalidInput(
        f"unsupported component uri {uri!r}", location="uri", hint="use file://PATH or s3://BUCKET/KEY"
    )
