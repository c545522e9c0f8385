"""``kiln serve``'s ASGI application: authenticate, route by service, call, answer in the service's protocol.

Which service a request is for comes from its signature's credential scope (``…/<region>/<service>/
aws4_request``), as every SDK signs with the service's signing name; the scope's region is the kiln
region the request acts in (Organizations and STS are global). A request without a signature is
answered in the envelope of the service it looks like it is for (``X-Amz-Target``, the form's
``Version``). Nothing but ``GET /health`` is answered without a valid signature. Work runs in threads
(the database is the only shared state), so slow calls never block the event loop.

Request ids (and the ids of page snapshots) come from Python's generator, not the system's: they must be
unique, not secret, and under load each system call let another thread take the interpreter, for as long
as it liked, before the request could go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable, Hashable
from typing import Any

from kiln.api import autoscaling, ec2, encoded, idempotency, imagebuilder, organizations, paging, query, ssm, sts
from kiln.api.errors import ApiError, from_auth
from kiln.api.protocol import HttpRequest, HttpResponse, Service
from kiln.api.recent import Recent
from kiln.api.sigv4 import ALGORITHM, AuthFailure, Caller, Request, verify
from kiln.errors import KilnError
from kiln.services.common.unit import only_reading, steady_reading

log = logging.getLogger("kiln.api")
MAX_BODY = 4 * 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024
AUTH_MEMO_SECONDS = 5.0
READ_PREFIXES = ("Describe", "Get", "List")
READS_WITHOUT_LOCK = os.environ.get("KILN_API_READ_ONLY", "1") != "0"  # 0: only to measure what it saves
SERVICES: dict[str, Service] = {
    service.name: service
    for service in (
        imagebuilder.SERVICE, ec2.SERVICE, sts.SERVICE, organizations.SERVICE, autoscaling.SERVICE, ssm.SERVICE
    )
}
_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/[^/,]+/(?P<service>[^/,]+)/aws4_request")
_TARGETS = {"AWSOrganizationsV20161128": "organizations", "AmazonSSM": "ssm"}
_VERSIONS = {"2016-11-15": "ec2", "2011-06-15": "sts", "2011-01-01": "autoscaling"}


def _scope_service(headers: dict[str, str], query: str) -> str | None:
    found = _SCOPE.search(headers.get("authorization", ""))
    if found:
        return found["service"]
    credential = dict(urllib.parse.parse_qsl(query)).get("X-Amz-Credential")
    if credential is None:
        return None
    parts = credential.split("/")
    return parts[3] if len(parts) == 5 else ""


def service_for(headers: dict[str, str], query: str, body: bytes) -> tuple[Service, str | None]:
    """The service a request is for, and the signing name when the signature names one kiln does not serve."""
    named = _scope_service(headers, query)
    if named is not None:
        return (SERVICES[named], None) if named in SERVICES else (imagebuilder.SERVICE, named)
    target = headers.get("x-amz-target", "").partition(".")[0]
    if target in _TARGETS:
        return SERVICES[_TARGETS[target]], None
    form = dict(urllib.parse.parse_qsl(query))
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
    return SERVICES[_VERSIONS.get(form.get("Version", ""), "imagebuilder")], None


def _touch(shape: Any, seen: set[str]) -> None:
    """Resolve a shape and every shape under it (botocore resolves them lazily, on first use)."""
    if shape is None or shape.name in seen:
        return
    seen.add(shape.name)
    for child in getattr(shape, "members", {}).values():
        _touch(child, seen)
    for attribute in ("member", "key", "value"):
        _touch(getattr(shape, attribute, None), seen)


def warm() -> None:
    """Load now what the first request would otherwise load: each service's botocore model (EC2's alone
    takes most of a second to read), its paginators, the shapes of the operations kiln serves and the
    XML renderers of their answers, the rest-json routes, what verifying a signature first loads, and
    the reads nearly every call makes (:func:`_warm_reads`). ``kiln serve`` runs it before it says it
    is listening."""
    from kiln.api.model import paginators, service_model
    from kiln.api.rest_json import routes
    from kiln.api.xml_render import renderer

    for service in SERVICES.values():
        model = service_model(service.name)
        paginators(service.name)
        seen: set[str] = set()
        xml = service.wire is query
        for name in service.handlers:
            _touch(model.operation_model(name).input_shape, seen)
            output = model.operation_model(name).output_shape
            _touch(output, seen)
            if xml and output is not None:
                renderer(output)
        for shape in model.error_shapes:
            shape.metadata.get("error")
    routes(imagebuilder.SERVICE.name)
    _secret("AKIA0000000000000000")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    unknown = {"authorization": f"{ALGORITHM} Credential=AKIA0000000000000000/{stamp[:8]}/local/ec2/aws4_request, "
               "SignedHeaders=host, Signature=0", "x-amz-date": stamp, "host": "kiln"}
    with contextlib.suppress(AuthFailure):  # an unknown key: parsing and dates load, no secret is needed
        verify(Request("GET", "/", "", unknown, b""), lambda key: None)
    only_reading(_warm_reads)


def _warm_reads() -> None:
    """What the first calls would read or compile, in the read-only units of work reads use: each
    region's AMIs read into the store's memory and rendered to XML once (the first DescribeImages
    would do both for all of them), and the queries of the region check, the caller lookups and
    GetImage compiled (an image that does not exist is looked up)."""
    from kiln.home import DEFAULT_ACCOUNT
    from kiln.services import image_versions
    from kiln.services.accounts.regions import list_regions
    from kiln.services.ec2 import images

    for region in (entry["RegionName"] for entry in list_regions()):
        _known_region(region)
        found = images.described_images(region=region, include_deprecated=True, include_disabled=True)
        query.success(ec2.SERVICE.name, "DescribeImages", {"Images": paging.Shaped(found, images.wire_shape)}, "")
        with contextlib.suppress(KilnError):
            image_versions.get_image(f"arn:aws:imagebuilder:{region}:{DEFAULT_ACCOUNT}:image/kiln-warm/0.0.0/1",
                                     caller=DEFAULT_ACCOUNT, region=region)


def _key_secret(access_key_id: Hashable) -> tuple[str, str] | None:
    from kiln.services.accounts.accounts import key_secret

    return only_reading(lambda: key_secret(str(access_key_id)))


def _region(name: Hashable) -> str:
    from kiln.services.accounts.regions import require_region

    return only_reading(lambda: require_region(str(name), field="credential scope region"))


# A key made inactive or deleted, or a region deleted, is refused at most this long after.
_secret: Recent[tuple[str, str] | None] = Recent(AUTH_MEMO_SECONDS, _key_secret)
_known_region: Recent[str] = Recent(AUTH_MEMO_SECONDS, _region)


def reads(operation: str) -> bool:
    """Whether an operation only reads (AWS names those Describe…, Get…, List…): its units of work take
    no write lock, so reads run beside each other and beside a writer (one that writes after all is
    run again as a writer: ``only_reading``)."""
    return READS_WITHOUT_LOCK and operation.startswith(READ_PREFIXES)


def _call(service: Service, request: HttpRequest, caller: Caller, request_id: str) -> tuple[HttpResponse, str]:
    operation = "-"
    try:
        if service.regional:
            _known_region(caller.region)
        operation, params = service.wire.read(service.name, service.dialect, request)
        handler = service.handlers.get(operation)
        if handler is None:
            raise service.dialect.not_served(operation)
        if service.precheck is not None:
            service.precheck(params, caller)
        def answer() -> dict[str, Any]:
            return idempotency.call(service.name, operation, params, caller, lambda: handler(params, caller))

        def render(result: dict[str, Any], rid: str) -> HttpResponse:
            return service.wire.success(service.name, operation, result, rid)

        def respond() -> HttpResponse:
            whole, cut = paging.prepare(service.name, operation, params, answer, service.dialect, service.limits,
                                        caller.account_id)
            request = (service.name, operation, caller.account_id, caller.region)
            return encoded.respond(request, params, whole, cut, render, request_id)

        return (steady_reading(respond) if reads(operation) else respond()), operation
    except ApiError as error:
        return service.wire.failure(service.name, error, request_id), operation
    except KilnError as error:
        return service.wire.failure(service.name, service.dialect.from_kiln(error), request_id), operation
    except Exception as error:  # a bug: the client gets the service's internal error, the log the trace
        log.exception("%s %s failed", service.name, operation)
        internal = service.dialect.from_kiln(KilnError(f"internal error ({type(error).__name__})"))
        return service.wire.failure(service.name, internal, request_id), operation


def handle_request(request: HttpRequest, request_id: str) -> tuple[HttpResponse, str, str]:
    """(response, "service:operation", account) of one request (runs in a worker thread)."""
    if request.method == "GET" and request.path == "/health":
        return HttpResponse(200, {"content-type": "application/json"}, b'{"status": "ok"}'), "health", "-"
    service, unserved = service_for(dict(request.headers), request.query, request.body)
    try:
        caller = verify(Request(request.method, request.path, request.query, request.headers, request.body),
                        _secret)
    except AuthFailure as failure:
        error = from_auth(failure, service.wire.family(service.name))
        return service.wire.failure(service.name, error, request_id), f"{service.name}:-", "-"
    if unserved is not None:
        error = ApiError("UnknownServiceException", f"kiln does not serve {unserved or 'this service'} yet", 400)
        return service.wire.failure(service.name, error, request_id), f"{unserved}:-", caller.account_id
    response, operation = _call(service, request, caller, request_id)
    return response, f"{service.name}:{operation}", caller.account_id


async def _read_body(receive: Any, declared: int) -> tuple[bytes | None, bool]:
    """(the whole body, or None when it is over ``MAX_BODY``; whether it was read to its end). A body
    over the limit is still read and dropped up to ``DRAIN_LIMIT``, so the client reads the answer
    instead of a reset connection."""
    if declared > DRAIN_LIMIT:
        return None, False
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > DRAIN_LIMIT:
            return None, False
        if size <= MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body"):
            return (b"".join(chunks) if size <= MAX_BODY else None), True


def _declared_length(headers: dict[str, str]) -> int:
    try:
        return int(headers.get("content-length", "0"))
    except ValueError:
        return 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    started = time.monotonic()
    method, path = scope["method"], scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    path, _, raw_query = path.partition("?")
    query = scope.get("query_string", b"").decode("latin-1") or raw_query
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
    body, complete = await _read_body(receive, _declared_length(headers))
    request_id = str(uuid.UUID(int=random.getrandbits(128), version=4))
    if body is None:
        service, _ = service_for(headers, query, b"")
        response = service.wire.failure(service.name, service.dialect.oversize(MAX_BODY), request_id)
        action, account = f"{service.name}:-", "-"
    else:
        response, action, account = await asyncio.to_thread(
            handle_request, HttpRequest(method, path, query, headers, body), request_id
        )
    length = len(response.body) + len(response.tail)
    out_headers = {**response.headers, "x-amzn-requestid": request_id, "content-length": str(length)}
    if not complete:
        out_headers["connection"] = "close"  # the rest of the body is not read
    await send({"type": "http.response.start", "status": response.status,
                "headers": [(k.encode(), v.encode()) for k, v in out_headers.items()]})
    if response.tail:
        await send({"type": "http.response.body", "body": response.body, "more_body": True})
        await send({"type": "http.response.body", "body": response.tail})
    else:
        await send({"type": "http.response.body", "body": response.body})
    access(f"{method} {action} {account} {response.status} {(time.monotonic() - started) * 1000:.1f}ms")


def _log_access(line: str) -> None:
    log.info("%s", line)


# Where each request's access line goes: the "kiln.api" logger, unless ``kiln serve`` gives a cheaper way
# (``server``: a queue its own thread writes from; a log record per request was a tenth of a cheap read).
access: Callable[[str], None] = _log_access
