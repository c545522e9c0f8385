"""``kiln apply --endpoint-url URL``: the same file applied to a running ``kiln serve`` (or any Image
Builder endpoint) through boto3's ``imagebuilder`` client, credentials from the normal AWS chain.

Every document is checked here first (nothing is sent if one is bad), then sent in dependency order, one
call each: ``Create<Kind>`` (operation, answer and update fields read from botocore's model). The status
is told as a local apply tells it: a versioned resource (component, recipe) that existed is
``unchanged`` (``updated`` when only its tags changed); a configuration, pipeline or lifecycle policy
that existed is updated in place (``Update<Kind>``) and is ``updated`` or ``unchanged`` as its Get
answer changed or not. An ``Image`` is created with a clientToken derived from the document, so the
server answers the image the same document started before (kept for the server's token lifetime, seven
days for kiln) as ``unchanged``; once that image FAILED or was CANCELLED the next token starts a new build.
Over the API a refused document stops the apply: what came before it stays (each call is its own change).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from kiln.errors import InvalidInput, KilnError
from kiln.services.apply import ApplyResult, Document, Outcome, checked_documents, read_file_text

VERSIONED = ("Component", "ImageRecipe", "ContainerRecipe")
IGNORED_IN_GET = ("dateUpdated", "dateLastRun", "dateNextRun", "lastRunStatus", "requestId")


def client(endpoint_url: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    # A session of its own: the credential chain is read now (boto3's default session keeps what it read).
    return boto3.session.Session().client("imagebuilder", endpoint_url=endpoint_url, region_name=region,
                                          config=Config(retries={"max_attempts": 2}))


def apply_remote(path: str, *, endpoint_url: str, region: str) -> ApplyResult:
    text, source, _ = read_file_text(path)
    documents = checked_documents(text, source)
    imagebuilder = client(endpoint_url, region)
    result = ApplyResult()
    for document in documents:
        try:
            arn, status = _send(imagebuilder, document)
        except KilnError as error:
            error.location = f"{document.where}: {error.location}" if error.location else document.where
            raise
        result.outcomes.append(Outcome(document.kind, arn, status, document.index))
    return result


def _call(imagebuilder: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    from botocore import xform_name
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        answer: dict[str, Any] = getattr(imagebuilder, xform_name(operation))(**params)
    except NoCredentialsError:
        raise KilnError("no AWS credentials found for the endpoint",
                        hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE (a kiln access key)") from None
    except ClientError as error:
        details = error.response.get("Error", {})
        raise KilnError(f"{operation}: {details.get('Code', 'error')}: {details.get('Message', error)}") from None
    except BotoCoreError as error:
        raise KilnError(f"{operation}: {error}") from None
    answer.pop("ResponseMetadata", None)
    return answer


def _model(imagebuilder: Any) -> Any:
    return imagebuilder.meta.service_model


def _arn_member(shape: Any) -> str:
    return next(name for name in shape.members if name.endswith("Arn"))


def _send(imagebuilder: Any, document: Document) -> tuple[str, str]:
    model = _model(imagebuilder)
    create = f"Create{document.kind}"
    if create not in model.operation_names:
        raise InvalidInput(f"kind {document.kind} has no Image Builder operation; apply it without --endpoint-url")
    body = document.request.model_dump(mode="json", exclude_none=True)
    if document.kind == "ImagePipeline":  # kiln:approval becomes the workflows it stands for
        from kiln.services.pipelines.resource import request_of

        body = request_of(document.request, imagebuilder.meta.region_name, document.where).dump()
    if document.kind == "Image":
        return _create_image(imagebuilder, body)
    existing = _existing(imagebuilder, document.kind, body)
    update = f"Update{document.kind}"
    if existing is not None and update in model.operation_names:
        return _update(imagebuilder, document.kind, existing["arn"], body)
    before = _tags(imagebuilder, document.kind, existing) if existing else None
    answer = _call(imagebuilder, create, body)
    arn = answer[_arn_member(model.operation_model(create).output_shape)]
    if existing is None:
        return arn, "created"
    # as a local apply: an immutable version given new tags is "updated" (the server retags it)
    return arn, "updated" if body.get("tags") is not None and body["tags"] != before else "unchanged"


def _tags(imagebuilder: Any, kind: str, entry: dict[str, Any]) -> dict[str, str]:
    """The tags of an existing version (a component's are its newest build's)."""
    if kind == "Component":
        builds = _call(imagebuilder, "ListComponentBuildVersions", {"componentVersionArn": entry["arn"]})
        entry = (builds.get("componentSummaryList") or [{}])[-1]
    return dict(entry.get("tags") or {})


def _existing(imagebuilder: Any, kind: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """The list entry of the resource the document names, if the server has it (its version, when
    versioned)."""
    model = _model(imagebuilder)
    listing = f"List{kind[:-1]}ies" if kind.endswith("y") else f"List{kind}s"
    if listing not in model.operation_names:
        return None
    shape = model.operation_model(listing)
    key = next(name for name, member in shape.output_shape.members.items() if member.type_name == "list")
    for entry in _pages(imagebuilder, listing, key):
        if entry.get("name") != body["name"]:
            continue
        version = entry.get("version") or entry["arn"].split("/")[-1]
        if kind not in VERSIONED or version == body.get("semanticVersion"):
            return dict(entry)
    return None


def _pages(imagebuilder: Any, listing: str, key: str) -> list[dict[str, Any]]:
    """Every entry of a List call, page by page (no filters: their names differ between services)."""
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    while True:
        answer = _call(imagebuilder, listing, params)
        entries.extend(answer.get(key) or [])
        if not answer.get("nextToken"):
            return entries
        params = {"nextToken": answer["nextToken"]}


def _get(imagebuilder: Any, kind: str, arn_member: str, arn: str) -> dict[str, Any]:
    answer = _call(imagebuilder, f"Get{kind}", {arn_member: arn})
    shape = next(value for key, value in answer.items() if isinstance(value, dict))
    return {key: value for key, value in shape.items() if key not in IGNORED_IN_GET}


def _update(imagebuilder: Any, kind: str, arn: str, body: dict[str, Any]) -> tuple[str, str]:
    operation = _model(imagebuilder).operation_model(f"Update{kind}")
    arn_member = _arn_member(operation.input_shape)
    params = {key: value for key, value in body.items() if key in operation.input_shape.members}
    params[arn_member] = arn
    before = _get(imagebuilder, kind, arn_member, arn)
    _call(imagebuilder, f"Update{kind}", params)
    return arn, "updated" if _get(imagebuilder, kind, arn_member, arn) != before else "unchanged"


def _create_image(imagebuilder: Any, body: dict[str, Any]) -> tuple[str, str]:
    """CreateImage with a token derived from the document; a token whose image FAILED or was CANCELLED
    leads to the next one (a new build), as a local apply starts one."""
    body = {key: value for key, value in body.items() if key != "clientToken"}
    seed = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    started = datetime.now(UTC)
    for _ in range(100):
        arn = _call(imagebuilder, "CreateImage", {**body, "clientToken": seed})["imageBuildVersionArn"]
        image = _call(imagebuilder, "GetImage", {"imageBuildVersionArn": arn})["image"]
        if image["state"]["status"] not in ("FAILED", "CANCELLED"):
            created = datetime.fromisoformat(str(image["dateCreated"]).replace("Z", "+00:00"))
            return arn, "unchanged" if created < started else "created"
        seed = hashlib.sha256(f"{seed} {arn}".encode()).hexdigest()
    raise KilnError("the same Image document failed 100 times; not starting another build")


def wait_remote(endpoint_url: str, region: str, arn: str, *, poll_seconds: float = 2.0) -> dict[str, Any]:
    """GetImage until the image is final."""
    import time

    imagebuilder = client(endpoint_url, region)
    while True:
        image: dict[str, Any] = _call(imagebuilder, "GetImage", {"imageBuildVersionArn": arn})["image"]
        if image["state"]["status"] in ("AVAILABLE", "FAILED", "CANCELLED", "DEPRECATED", "DISABLED", "DELETED"):
            return image
        time.sleep(poll_seconds)
