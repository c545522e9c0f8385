"""The form-encoded protocols, ``ec2`` (EC2) and ``query`` (STS, Auto Scaling), as botocore's model
defines them.

Input is ``Action=…&Version=…`` plus the members under their serialization names (EC2: ``queryName``
or the capitalised ``locationName``; query: ``locationName``), lists as ``Name.N`` (EC2) or
``Name.member.N`` (query), structures as ``Name.Member``. Answers are XML: EC2's ``<XResponse
xmlns="http://ec2.amazonaws.com/doc/<version>/"><requestId>`` with lists as ``<item>``; query's
``<XResponse><XResult>…</XResult><ResponseMetadata><RequestId>`` with lists as ``<member>``. Errors
are EC2's ``<Response><Errors><Error>…<RequestID>`` and query's ``<ErrorResponse>``.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from typing import Any
from xml.sax.saxutils import escape

from kiln.api.errors import ApiError, Dialect
from kiln.api.model import as_datetime, error_status, service_model
from kiln.api.protocol import HttpRequest, HttpResponse
from kiln.api.xml_render import to_xml

_FORM_KEYS = ("Action", "Version")
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


def family(service: str) -> str:
    return "ec2" if _is_ec2(service) else "query"


def _is_ec2(service: str) -> bool:
    return bool(service_model(service).protocol == "ec2")


# --- input ---------------------------------------------------------------------------------------


def form_of(request: HttpRequest) -> dict[str, str]:
    """The request's parameters: the form body and the query string (GET works as on AWS)."""
    pairs = urllib.parse.parse_qsl(request.query, keep_blank_values=True)
    if request.body:
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError("MalformedQueryString", "the request body is not UTF-8 form data") from None
        pairs += urllib.parse.parse_qsl(text, keep_blank_values=True)
    return {key: value for key, value in pairs if not key.startswith("X-Amz-")}


def _wire_name(shape: Any, member: str, ec2: bool) -> str:
    if ec2:
        if "queryName" in shape.serialization:
            return str(shape.serialization["queryName"])
        name = shape.serialization.get("name")
        return name[0].upper() + name[1:] if name else member
    return str(shape.serialization.get("name", member))


class _Reader:
    def __init__(self, form: dict[str, str], dialect: Dialect, ec2: bool) -> None:
        self.form, self.dialect, self.ec2 = form, dialect, ec2
        self.used: set[str] = set()

    def _indices(self, prefix: str) -> list[int]:
        found = set()
        for key in self.form:
            if key.startswith(prefix + "."):
                head = key[len(prefix) + 1 :].split(".", 1)[0]
                if not head.isdigit() or int(head) < 1:
                    raise self.dialect.unknown_member(key)
                found.add(int(head))
        return sorted(found)

    def read(self, shape: Any, key: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape, key)
        if kind == "list":
            return self.list(shape, key)
        if kind == "map":
            return self.map(shape, key)
        if key not in self.form:
            return None
        self.used.add(key)
        return self.scalar(shape, key, self.form[key])

    def structure(self, shape: Any, prefix: str) -> dict[str, Any] | None:
        found: dict[str, Any] = {}
        for member, member_shape in shape.members.items():
            name = _wire_name(member_shape, member, self.ec2)
            value = self.read(member_shape, f"{prefix}.{name}" if prefix else name)
            if value is not None:
                found[member] = value
        if not found and prefix:
            return None
        for member in shape.required_members:
            if member not in found:
                name = _wire_name(shape.members[member], member, self.ec2)
                raise self.dialect.missing_member(f"{prefix}.{name}" if prefix else name)
        return found

    def list(self, shape: Any, key: str) -> list[Any] | None:
        if key in self.form and self.form[key] == "":  # an empty list
            self.used.add(key)
            return []
        if self.ec2 or shape.serialization.get("flattened"):
            base = key
        else:
            base = f"{key}.{shape.member.serialization.get('name', 'member')}"
        indices = self._indices(base)
        if not indices:
            return None
        return [self.read(shape.member, f"{base}.{index}") for index in indices]

    def map(self, shape: Any, key: str) -> dict[str, Any] | None:
        base = key if shape.serialization.get("flattened") else f"{key}.entry"
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        found = {}
        for index in self._indices(base):
            entry_key = self.read(shape.key, f"{base}.{index}.{key_name}")
            if entry_key is None:
                raise self.dialect.missing_member(f"{base}.{index}.{key_name}")
            found[entry_key] = self.read(shape.value, f"{base}.{index}.{value_name}")
        return found or None

    def scalar(self, shape: Any, key: str, text: str) -> Any:
        kind = shape.type_name
        try:
            if kind in ("integer", "long"):
                return int(text)
            if kind in ("float", "double"):
                return float(text)
            if kind == "boolean":
                if text.lower() not in ("true", "false"):
                    raise ValueError(text)
                return text.lower() == "true"
            if kind == "timestamp":
                when = as_datetime(float(text) if text.replace(".", "", 1).isdigit() else text)
                if when is None:
                    raise ValueError(text)
                return when
            if kind == "blob":
                return base64.b64decode(text, validate=True)
        except (ValueError, binascii.Error):
            raise self.dialect.invalid_value(key, text, kind) from None
        if shape.enum and text not in shape.enum:
            raise self.dialect.invalid_value(key, text, "enum")
        return text


# Reads' inputs by (service, method, query string, body): a client repeating a read sends the same bytes.
# Only reads: their handlers take the input as it is (read-only, shared by the requests that sent it).
_read_inputs: dict[tuple[str, str, str, bytes], tuple[str, dict[str, Any]]] = {}
READS = ("Describe", "Get", "List")
MAX_KEPT_INPUTS, MAX_KEPT_BODY = 1024, 4096


def read(service: str, dialect: Dialect, request: HttpRequest) -> tuple[str, dict[str, Any]]:
    key = (service, request.method, request.query, request.body)
    kept = _read_inputs.get(key)
    if kept is not None:
        return kept
    action, params = _parse(service, dialect, request)
    if action.startswith(READS) and len(request.body) + len(request.query) <= MAX_KEPT_BODY:
        if len(_read_inputs) >= MAX_KEPT_INPUTS:
            _read_inputs.clear()
        _read_inputs[key] = (action, params)
    return action, params


def _parse(service: str, dialect: Dialect, request: HttpRequest) -> tuple[str, dict[str, Any]]:
    if request.method not in ("POST", "GET"):
        raise ApiError(dialect.unknown_operation, f"{request.method} is not supported", 405)
    form = form_of(request)
    model = service_model(service)
    action = form.get("Action", "")
    if action not in model.operation_names:
        raise dialect.no_operation(action)
    shape = model.operation_model(action).input_shape
    reader = _Reader(form, dialect, _is_ec2(service))
    params = reader.structure(shape, "") if shape is not None else {}
    leftover = sorted(set(form) - reader.used - set(_FORM_KEYS))
    if leftover:
        raise dialect.unknown_member(leftover[0])
    return action, params or {}


# --- output --------------------------------------------------------------------------------------


def namespace(service: str) -> str:
    model = service_model(service)
    if _is_ec2(service):
        return f"http://ec2.amazonaws.com/doc/{model.api_version}/"
    return str(model.metadata.get("xmlNamespace") or f"https://{service}.amazonaws.com/doc/{model.api_version}/")


def success(service: str, operation: str, result: dict[str, Any], request_id: str) -> HttpResponse:
    shape = service_model(service).operation_model(operation).output_shape
    root = f'{operation}Response xmlns="{namespace(service)}"'
    if _is_ec2(service):
        content = to_xml(shape, result) if shape is not None else "<return>true</return>"
        body = f"<{root}><requestId>{request_id}</requestId>{content}</{operation}Response>"
    else:
        wrapper = shape.serialization.get("resultWrapper") if shape is not None else None
        content = to_xml(shape, result) if shape is not None else ""
        if wrapper:
            content = f"<{wrapper}>{content}</{wrapper}>"
        body = (f"<{root}>{content}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
                f"</{operation}Response>")
    return HttpResponse(200, {"content-type": "text/xml;charset=UTF-8"}, (XML_HEAD + body).encode())


def failure(service: str, error: ApiError, request_id: str) -> HttpResponse:
    code, message = escape(error.code), escape(error.message)
    if _is_ec2(service):
        status = error.status or 400
        body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>")
    else:
        status = error.status or error_status(service, error.code, 400)
        kind = "Sender" if error.sender else "Receiver"
        body = (f'<ErrorResponse xmlns="{namespace(service)}"><Error><Type>{kind}</Type><Code>{code}</Code>'
                f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    return HttpResponse(status, {"content-type": "text/xml;charset=UTF-8"}, (XML_HEAD + body).encode())
