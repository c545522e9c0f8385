"""Image Builder's image listings and cancellation as the API answers them: ``ListImages`` (one
``ImageVersion`` per name and version, or per name with ``byName``), ``ListImageBuildVersions`` (the
builds of one version as ``ImageSummary``), ``GetImage`` and ``CancelImageCreation`` over the build
records of ``services/builds``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kiln.errors import Conflict, InvalidInput
from kiln.model.arn import parse_arn
from kiln.model.shapes import new_client_token, new_request_id
from kiln.services.builds import records

FILTER_FIELDS = ("name", "osVersion", "platform", "type", "version")
_VERSION_FIELDS = ("arn", "name", "type", "version", "platform", "osVersion", "owner", "dateCreated", "buildType",
                   "imageSource")
_SUMMARY_FIELDS = ("arn", "name", "type", "version", "platform", "osVersion", "state", "owner", "dateCreated",
                   "outputResources", "tags", "buildType", "imageSource", "deprecationTime", "lifecycleExecutionId")


def _semver(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("/")[0].split(".") if part.isdigit())


def _filters(filters: Iterable[dict[str, Any]] | None) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for entry in filters or []:
        name = entry.get("name")
        if name not in FILTER_FIELDS:
            raise InvalidInput(f"filter {name!r} is not one of {', '.join(FILTER_FIELDS)}", location="filters")
        found.setdefault(name, set()).update(entry.get("values") or [])
    return found


def _builds(*, account: str | None = None, region: str | None = None) -> list[dict[str, Any]]:
    found = []
    for image in records.list_images():
        arn = parse_arn(image["arn"], resource_type="image")
        if (account and arn.account != account) or (region and arn.region != region):
            continue
        found.append({**image, "owner": arn.account})
    return found


def _keep(image: dict[str, Any], filters: dict[str, set[str]], version_key: str) -> bool:
    for name, values in filters.items():
        value = image.get(name) if name != "version" else image.get(version_key)
        if value not in values:
            return False
    return True


def list_image_versions(
    *,
    account: str,
    region: str,
    owner: str = "Self",
    filters: Iterable[dict[str, Any]] | None = None,
    by_name: bool = False,
    include_deprecated: bool = False,
) -> dict[str, Any]:
    """ListImages: the caller's image versions (nothing is shared with kiln's accounts by other owners)."""
    wanted = _filters(filters)
    if owner != "Self":
        return {"requestId": new_request_id(), "imageVersionList": []}
    versions: dict[str, dict[str, Any]] = {}
    for build in _builds(account=account, region=region):
        status = build["state"]["status"]
        if status == "DELETED" or (status == "DEPRECATED" and not include_deprecated):
            continue
        semantic = build["version"].split("/")[0]
        arn = build["arn"].rsplit("/", 1)[0]
        entry = {**build, "arn": arn, "version": semantic}
        if not _keep(entry, wanted, "version"):
            continue
        earlier = versions.get(arn)
        if earlier is None or entry["dateCreated"] < earlier["dateCreated"]:
            versions[arn] = entry
    listed = sorted(versions.values(), key=lambda v: (v["name"], _semver(v["version"])))
    if by_name:
        newest: dict[str, dict[str, Any]] = {}
        for entry in listed:
            newest[entry["name"]] = entry
        listed = list(newest.values())
    return {"requestId": new_request_id(),
            "imageVersionList": [{k: v[k] for k in _VERSION_FIELDS if v.get(k) is not None} for v in listed]}


def list_image_build_versions(image_version_arn: str, *, filters: Iterable[dict[str, Any]] | None = None,
                              caller: str | None = None) -> dict[str, Any]:
    """ListImageBuildVersions: every build of one image version, oldest first (none of another
    account's: ``caller`` sees its own)."""
    version = parse_arn(image_version_arn, field="imageVersionArn", resource_type="image")
    if version.build is not None or version.exact_version is None:
        raise InvalidInput(f"{image_version_arn!r} is not an image version ARN (name/x.y.z)",
                           location="imageVersionArn")
    wanted = _filters(filters)
    summaries = []
    if caller is not None and version.account != caller:
        return {"requestId": new_request_id(), "imageSummaryList": []}
    for build in _builds(account=version.account, region=version.region):
        if build["arn"].rsplit("/", 1)[0] != image_version_arn:
            continue
        if _keep({**build, "version": build["version"].split("/")[0]}, wanted, "version"):
            summaries.append({k: build[k] for k in _SUMMARY_FIELDS if build.get(k) is not None})
    summaries.sort(key=lambda s: int(s["arn"].rsplit("/", 1)[1]))
    return {"requestId": new_request_id(), "imageSummaryList": summaries}


def get_image(arn: str, *, caller: str | None = None, region: str | None = None) -> dict[str, Any]:
    """GetImage of one build (``…/image/<name>/<x.y.z>/<build>``); another account's is not found, nor
    (with ``region``) one built in another region."""
    parse_arn(arn, field="imageBuildVersionArn", resource_type="image")
    return {"requestId": new_request_id(), "image": records.get_image(arn, caller=caller, region=region)}


def cancel_image_creation(arn: str, client_token: str | None = None, *, caller: str | None = None
                          ) -> dict[str, Any]:
    """CancelImageCreation; asking again for a build whose cancellation is under way answers the same."""
    parse_arn(arn, field="imageBuildVersionArn", resource_type="image")
    try:
        records.request_cancel(arn, caller=caller)
    except Conflict:
        if not records.get_row(arn).cancel_requested:
            raise
    return {"requestId": new_request_id(), "clientToken": client_token or new_client_token(),
            "imageBuildVersionArn": arn}
