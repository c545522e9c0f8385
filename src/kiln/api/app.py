"""``kiln serve``'s ASGI application: authenticate, route by service, call, answer in the service's protocol.

Which service a request is for comes from its signature's credential scope (``…/<region>/<service>/
aws4_request``), as every SDK signs with the service's signing name; the scope's region is the kiln
region the request acts in. Nothing but ``GET /health`` is answered without a valid signature. Work
runs in threads (the database is the only shared state), so slow calls never block the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import urllib.parse
import uuid
from typing import Any

from kiln.api import rest_json
from kiln.api.errors import ApiError, from_auth, from_kiln
from kiln.api.sigv4 import AuthFailure, Caller, Request, verify
from kiln.errors import KilnError

log = logging.getLogger("kiln.api")
MAX_BODY = 4 * 1024 * 1024
PROTOCOLS = {"imagebuilder": "rest-json"}
_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/[^/,]+/(?P<service>[^/,]+)/aws4_request")


def _service_of(headers: dict[str, str], query: str) -> str:
    found = _SCOPE.search(headers.get("authorization", ""))
    if found:
        return found["service"]
    credential = dict(urllib.parse.parse_qsl(query)).get("X-Amz-Credential", "")
    parts = credential.split("/")
    return parts[3] if len(parts) == 5 else ""


def _secret(access_key_id: str) -> tuple[str, str] | None:
    from kiln.services.accounts.accounts import key_secret

    return key_secret(access_key_id)


def _dispatch(service: str, method: str, path: str, query: str, headers: dict[str, str], body: bytes,
              caller: Caller) -> tuple[int, dict[str, str], bytes, str]:
    from kiln.api import imagebuilder
    from kiln.services.accounts.regions import require_region

    operation = "?"
    try:
        operation, labels = rest_json.match(service, method, path)
        require_region(caller.region, field="credential scope region")
        params = rest_json.parse_input(service, operation, labels, query, headers, body)
        result = imagebuilder.handle(operation, params, caller)
        status, out_headers, out_body = rest_json.success_response(rest_json.page(service, operation, params, result))
    except ApiError as error:
        status, out_headers, out_body = rest_json.error_response(service, error)
    except KilnError as error:
        status, out_headers, out_body = rest_json.error_response(service, from_kiln(error))
    return status, out_headers, out_body, operation


def handle_request(method: str, path: str, query: str, headers: dict[str, str], body: bytes
                   ) -> tuple[int, dict[str, str], bytes, str, str]:
    """(status, headers, body, operation, account) of one request (runs in a worker thread)."""
    if method == "GET" and path == "/health":
        return 200, {"content-type": "application/json"}, b'{"status": "ok"}', "Health", "-"
    service = _service_of(headers, query)
    protocol = PROTOCOLS.get(service, "rest-json")
    try:
        caller = verify(Request(method, path, query, headers, body), _secret)
    except AuthFailure as failure:
        error = from_auth(failure, protocol)
        status, out_headers, out_body = rest_json.error_response("imagebuilder", error)
        return status, out_headers, out_body, "-", "-"
    if service not in PROTOCOLS:
        error = ApiError("UnknownServiceException", f"kiln does not serve {service or 'this service'} yet", 400)
        status, out_headers, out_body = rest_json.error_response("imagebuilder", error)
        return status, out_headers, out_body, "-", caller.account_id
    status, out_headers, out_body, operation = _dispatch(service, method, path, query, headers, body, caller)
    return status, out_headers, out_body, operation, caller.account_id


async def _read_body(receive: Any) -> bytes | None:
    """The whole body, or None when it is over ``MAX_BODY``."""
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    started = time.monotonic()
    method, path = scope["method"], scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
    body = await _read_body(receive)
    request_id = str(uuid.uuid4())
    if body is None:
        error = ApiError("RequestEntityTooLargeException", f"request bodies are at most {MAX_BODY} bytes", 413)
        status, out_headers, out_body = rest_json.error_response("imagebuilder", error)
        operation, account = "-", "-"
    else:
        status, out_headers, out_body, operation, account = await asyncio.to_thread(
            handle_request, method, path, query, headers, body
        )
    out_headers = {**out_headers, "x-amzn-requestid": request_id, "content-length": str(len(out_body))}
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in out_headers.items()]})
    await send({"type": "http.response.body", "body": out_body})
    log.info("%s %s %s %s %d %.1fms", method, path.split("?")[0], operation, account, status,
             (time.monotonic() - started) * 1000)
