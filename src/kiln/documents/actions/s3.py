"""S3Download and S3Upload: copy objects between S3 and the target's files with boto3.

Region and endpoint come from boto3's usual sources (environment, shared config);
``AWS_ENDPOINT_URL_S3`` (or ``AWS_ENDPOINT_URL``) points them at another S3 endpoint. Credentials and
reachability follow the executor's network policy (``kiln.documents.network``): the host's credential
chain only on the host, an instance's mapped profile, or unsigned requests. Files are
reached on the host side through ``executor.host_path``; downloads land via a temporary file that is
renamed into place once complete.

An executor may bring its own S3 client (``executor.s3_client(policy)``): kiln's runner in a VM guest
passes the requests to the host's S3 relay (``kiln.documents.s3_relay_client``), which keeps the
credentials and the network policy on the host. Such a client reports its failures itself, as
:class:`S3Failed` (said of the element's S3 URI as a boto3 failure is) or its ``upload_errors``, so
nothing here imports botocore for it.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import time
from collections.abc import Iterator
from typing import Any

from pydantic import Field, RootModel, field_validator

from kiln.documents.actions.base import Action, ActionFailed, ActionResult, Inputs, StepContext, register
from kiln.documents.actions.web_download import CHUNK, staged_file
from kiln.documents.network import HOST, NetworkPolicy, NetworkRefused, allowed_addresses, policy_of

# AWSTOE downloads at most this many objects for one key prefix.
MAX_PREFIX_OBJECTS = 1000


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key); the key may be empty (``s3://bucket/``)."""
    if not uri.startswith("s3://"):
        raise ValueError("must be an s3://bucket/key URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError("must name a bucket: s3://bucket/key")
    return bucket, key


class S3DownloadItem(Inputs):
    source: str = Field(min_length=1)
    destination: str = Field(min_length=1)
    expectedBucketOwner: str | None = None
    overwrite: bool = True

    @field_validator("source")
    @classmethod
    def _s3_source(cls, value: str) -> str:
        _, key = parse_s3_uri(value)
        if not key:
            raise ValueError("must name an object key or a key prefix ending in '/*'")
        return value


class S3UploadItem(Inputs):
    source: str = Field(min_length=1)
    destination: str = Field(min_length=1)
    recurse: bool = False
    expectedBucketOwner: str | None = None

    @field_validator("destination")
    @classmethod
    def _s3_destination(cls, value: str) -> str:
        parse_s3_uri(value)
        return value


class S3DownloadInputs(RootModel[list[S3DownloadItem]]):
    root: list[S3DownloadItem] = Field(min_length=1)


class S3UploadInputs(RootModel[list[S3UploadItem]]):
    root: list[S3UploadItem] = Field(min_length=1)


def client(policy: NetworkPolicy = HOST) -> Any:
    """An S3 client for ``policy``: its credentials, and an endpoint the policy lets it reach
    (honours ``AWS_ENDPOINT_URL_S3``). Raises NetworkRefused naming the endpoint otherwise."""
    import urllib.parse

    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    options: dict[str, Any] = {"retries": {"max_attempts": 5, "mode": "standard"}, "connect_timeout": 30,
                               "read_timeout": 120}
    if policy.aws_profile is None and not policy.host_credentials:
        options["signature_version"] = UNSIGNED
    if not policy.host_local:
        options["proxies"] = {}  # never through a proxy on the host
    session = boto3.session.Session(profile_name=policy.aws_profile)
    s3 = session.client("s3", config=Config(**options))
    endpoint = urllib.parse.urlsplit(s3.meta.endpoint_url)
    allowed_addresses(policy, endpoint.hostname or "", endpoint.port or (443 if endpoint.scheme == "https" else 80))
    return s3


class S3Failed(ActionFailed):
    """A failure an executor's own S3 client reports: ``detail`` is what :func:`detail` says of it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def detail(error: Exception) -> str:
    """What went wrong, as said after the S3 URI in a step's failure message."""
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code, message = info.get("Code", "Error"), info.get("Message", "")
        if code in ("404", "NoSuchKey"):
            return "no such object"
        if code in ("403", "AccessDenied"):
            return "access denied" + (f" ({message})" if message and message != "Forbidden" else "")
        return f"{code}" + (f": {message}" if message else "")
    return str(error)


def _describe(error: Exception, what: str) -> str:
    return f"{what}: {detail(error)}"


def _check_time(context: StepContext) -> None:
    """Fail between objects once the step's time is up (boto3 calls have their own timeouts)."""
    deadline = context.extra.get("s3_deadline")
    if deadline is not None and time.monotonic() >= deadline:
        raise ActionFailed(f"step timed out after {context.timeout:g} seconds")


def _owner(item: S3DownloadItem | S3UploadItem) -> dict[str, str]:
    return {"ExpectedBucketOwner": item.expectedBucketOwner} if item.expectedBucketOwner else {}


# download ------------------------------------------------------------------------------------
def _fetch(s3: Any, bucket: str, key: str, item: S3DownloadItem, target: str, context: StepContext) -> None:
    _check_time(context)
    destination = context.executor.host_path(target)
    if destination.is_dir():
        raise ActionFailed(f"destination {target} is a folder")
    if destination.exists() and not item.overwrite:
        raise ActionFailed(f'file {target} already exists and "overwrite" is set to false')
    if not destination.parent.is_dir():
        raise ActionFailed(f"folder {posixpath.dirname(target) or '/'} does not exist")
    response = s3.get_object(Bucket=bucket, Key=key, **_owner(item))
    body = response["Body"]
    written = 0
    with staged_file(destination) as (handle, commit):
        for chunk in body.iter_chunks(CHUNK):
            handle.write(chunk)
            written += len(chunk)
        expected = response.get("ContentLength")
        if expected is not None and written != expected:
            raise ActionFailed(f"s3://{bucket}/{key}: got {written} of {expected} bytes")
        commit()
    context.console(f"downloaded s3://{bucket}/{key} to {target}")


def _prefix_keys(s3: Any, bucket: str, prefix: str, item: S3DownloadItem) -> list[str]:
    response = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=MAX_PREFIX_OBJECTS, **_owner(item))
    if response.get("IsTruncated"):
        raise ActionFailed(f"s3://{bucket}/{prefix}*: more than {MAX_PREFIX_OBJECTS} objects; "
                           f"download at most {MAX_PREFIX_OBJECTS} per prefix")
    keys = [entry["Key"] for entry in response.get("Contents", [])]
    if not keys:
        raise ActionFailed(f"s3://{bucket}/{prefix}*: no objects under this prefix")
    return keys


def _inside(folder: str, relative: str) -> str:
    """``folder/relative``, refusing keys that would leave the folder (``..``, absolute parts)."""
    joined = posixpath.normpath(posixpath.join(folder, relative))
    base = posixpath.normpath(folder)
    if relative.startswith("/") or not (joined == base or joined.startswith(base.rstrip("/") + "/")):
        raise ActionFailed(f"object key part '{relative}' would be written outside {folder}")
    return joined


def download(s3: Any, item: S3DownloadItem, context: StepContext) -> None:
    bucket, key = parse_s3_uri(item.source)
    if key == "*" or key.endswith("/*"):
        prefix = key[:-1]
        folder = item.destination.rstrip("/") or "/"
        if not context.executor.host_path(folder).is_dir():
            raise ActionFailed(f"folder {folder} does not exist")
        for name in _prefix_keys(s3, bucket, prefix, item):
            relative = name[len(prefix):]
            if not relative:
                continue
            target = _inside(folder, relative)
            if name.endswith("/"):  # a "folder" placeholder object
                context.executor.host_path(target).mkdir(parents=True, exist_ok=True)
                continue
            context.executor.host_path(posixpath.dirname(target)).mkdir(parents=True, exist_ok=True)
            _fetch(s3, bucket, name, item, target, context)
        return
    target = item.destination
    if target.endswith("/") or context.executor.host_path(target).is_dir():
        target = posixpath.join(target, posixpath.basename(key))
    _fetch(s3, bucket, key, item, target, context)


# upload --------------------------------------------------------------------------------------
def _walk(folder: str, recurse: bool, context: StepContext) -> Iterator[tuple[str, str]]:
    """(target path, path relative to ``folder``) of the files in a target folder."""
    host = context.executor.host_path(folder)
    for current, dirs, files in os.walk(host):
        relative_dir = os.path.relpath(current, host)
        for name in sorted(files):
            relative = name if relative_dir == "." else f"{relative_dir}/{name}"
            yield posixpath.join(folder, relative), relative
        if not recurse:
            dirs.clear()
        dirs.sort()


def _sources(item: S3UploadItem, context: StepContext) -> Iterator[tuple[str, str]]:
    """(target file, key suffix under the destination) for every file the element uploads."""
    source = item.source
    folder, pattern = posixpath.split(source.rstrip("/") or "/")
    if "*" in pattern:
        host_folder = context.executor.host_path(folder or "/")
        if not host_folder.is_dir():
            raise ActionFailed(f"folder {folder} does not exist")
        matched = False
        for entry in sorted(os.listdir(host_folder)):
            if not fnmatch.fnmatchcase(entry, pattern):
                continue
            path = posixpath.join(folder, entry)
            host = context.executor.host_path(path)
            if host.is_file():
                matched = True
                yield path, entry
            elif host.is_dir() and item.recurse:
                matched = True
                for file, relative in _walk(path, True, context):
                    yield file, f"{entry}/{relative}"
        if not matched:
            raise ActionFailed(f"no files match {source}")
        return
    host = context.executor.host_path(source)
    if host.is_dir():
        yield from _walk(source.rstrip("/") or "/", item.recurse, context)
    elif host.is_file():
        yield source, posixpath.basename(source)
    else:
        raise ActionFailed(f"source {source} does not exist")


def _upload_errors(s3: Any) -> tuple[type[BaseException], ...]:
    own = getattr(s3, "upload_errors", None)
    if own is not None:
        return tuple(own)
    from boto3.exceptions import S3UploadFailedError

    return (S3UploadFailedError,)


def upload(s3: Any, item: S3UploadItem, context: StepContext) -> None:
    upload_errors = _upload_errors(s3)
    bucket, key = parse_s3_uri(item.destination)
    single = "*" not in posixpath.basename(item.source.rstrip("/")) and \
        context.executor.host_path(item.source).is_file()
    for target, suffix in _sources(item, context):
        if single and key and not key.endswith("/"):
            name = key
        else:
            name = (key if not key or key.endswith("/") else key + "/") + suffix
        _check_time(context)
        host = context.executor.host_path(target)
        if not host.is_file():
            raise ActionFailed(f"cannot read {target}: not a regular file")
        try:
            s3.upload_file(str(host), bucket, name, ExtraArgs=_owner(item) or None)
        except upload_errors as error:
            raise ActionFailed(f"upload of {target} to s3://{bucket}/{name} failed: {error}") from None
        context.console(f"uploaded {target} to s3://{bucket}/{name}")


def _boto_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return ClientError, BotoCoreError


def _run(items: list[Any], step: Any, context: StepContext, remote: str) -> None:
    """Run ``step`` on each element in order; the first failure fails the step."""
    own_client = getattr(context.executor, "s3_client", None)
    boto_errors = () if own_client is not None else _boto_errors()
    try:
        s3 = (own_client or client)(policy_of(context.executor))
    except NetworkRefused as error:
        raise ActionFailed(f"{getattr(items[0], remote)}: refused: {error}") from None
    except S3Failed as error:
        raise ActionFailed(f"{getattr(items[0], remote)}: {error.detail}") from None
    except (OSError, *boto_errors) as error:
        raise ActionFailed(f"{getattr(items[0], remote)}: {error}") from None
    if context.timeout is not None:
        context.extra["s3_deadline"] = time.monotonic() + context.timeout
    for item in items:
        try:
            step(s3, item, context)
        except S3Failed as error:
            raise ActionFailed(f"{getattr(item, remote)}: {error.detail}") from None
        except boto_errors as error:
            raise ActionFailed(_describe(error, getattr(item, remote))) from None
        except OSError as error:
            raise ActionFailed(f"{item.source}: {error.strerror or error}") from None


@register
class S3Download(Action):
    name = "S3Download"
    inputs = S3DownloadInputs

    def execute(self, inputs: S3DownloadInputs, context: StepContext) -> ActionResult:
        _run(inputs.root, download, context, "source")
        return ActionResult()


@register
class S3Upload(Action):
    name = "S3Upload"
    inputs = S3UploadInputs

    def execute(self, inputs: S3UploadInputs, context: StepContext) -> ActionResult:
        _run(inputs.root, upload, context, "destination")
        return ActionResult()

