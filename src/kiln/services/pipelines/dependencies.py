"""Have a pipeline's dependencies changed since its last successful image?

For ``EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE`` a scheduled run builds only when, compared
with what the pipeline's last AVAILABLE image was built from (``ImageBuild.resolved_inputs``, the
build plan): the recipe reference resolves to another recipe version; the parent image ARN filter
resolves to another AMI (an AMI id parent never changes); a component reference resolves to another
build; or, for a bootstrapped OS parent (``debian:bookworm``), the distribution published package
updates. The last one is checked cheaply against the mirror: the ``Date:`` of each suite's
``Release`` file (``bookworm``, ``bookworm-updates`` and ``bookworm-security``) is compared with the
dates recorded when the last image's run started (:attr:`PipelineExecutionRow.os_marker`).

Mirrors come from ``KILN_DEBIAN_MIRROR`` / ``KILN_DEBIAN_SECURITY_MIRROR`` (``KILN_UBUNTU_…`` for
Ubuntu), defaulting to the distributions' own.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from kiln.errors import KilnError

MIRRORS = {
    "debian": ("KILN_DEBIAN_MIRROR", "http://deb.debian.org/debian",
               "KILN_DEBIAN_SECURITY_MIRROR", "http://security.debian.org/debian-security"),
    "ubuntu": ("KILN_UBUNTU_MIRROR", "http://archive.ubuntu.com/ubuntu",
               "KILN_UBUNTU_SECURITY_MIRROR", "http://security.ubuntu.com/ubuntu"),
}
RELEASE_HEAD_BYTES = 8192  # the Date: field is in the first lines of a Release file


class OsCheckFailed(KilnError):
    """The distribution mirror could not be asked whether packages changed."""

    code = "ServiceUnavailableException"
    http_status = 503


@dataclass(frozen=True)
class DependencyCheck:
    """``updates``: whether a scheduled run should build; ``reason`` says why (or why not)."""

    updates: bool
    reason: str
    os_marker: dict[str, str] | None = None


# --- OS package updates --------------------------------------------------------------------------


def release_urls(distribution: str, suite: str) -> list[str]:
    """The Release files that change when ``distribution:suite`` gets package updates."""
    main_env, main_default, security_env, security_default = MIRRORS[distribution]
    main = os.environ.get(main_env, main_default).rstrip("/")
    security = os.environ.get(security_env, security_default).rstrip("/")
    return [
        f"{main}/dists/{suite}/Release",
        f"{main}/dists/{suite}-updates/Release",
        f"{security}/dists/{suite}-security/Release",
    ]


def release_date(url: str, *, timeout: float = 10.0) -> str | None:
    """The ``Date:`` of one Release file (None when the mirror has no such suite, HTTP 404).

    Only the head of the file is fetched (HTTP Range; at most RELEASE_HEAD_BYTES are read either way).
    """
    request = urllib.request.Request(url, headers={"Range": f"bytes=0-{RELEASE_HEAD_BYTES - 1}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            head = response.read(RELEASE_HEAD_BYTES).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise OsCheckFailed(f"{url}: HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise OsCheckFailed(f"cannot read {url}: {reason}", hint="check the mirror (KILN_*_MIRROR)") from None
    for line in head.splitlines():
        if line.startswith("Date:"):
            return line.split(":", 1)[1].strip()
        if not line.strip():
            break
    raise OsCheckFailed(f"{url} has no Date: field in its header")


def os_release_marker(distribution: str, suite: str, *, timeout: float = 10.0) -> dict[str, str]:
    """What the mirror says now: Release file URL → its ``Date:`` (suites the mirror lacks left out)."""
    marker = {}
    for url in release_urls(distribution, suite):
        date = release_date(url, timeout=timeout)
        if date is not None:
            marker[url] = date
    if not marker:
        raise OsCheckFailed(f"no Release file found for {distribution}:{suite}")
    return marker


def os_updates_since(recorded: dict[str, str] | None, current: dict[str, str]) -> str | None:
    """Why ``current`` means package updates compared with ``recorded`` (None: nothing new)."""
    if not recorded:
        return "no OS release dates were recorded for the last image"
    for url, date in current.items():
        before = recorded.get(url)
        if before is None:
            return f"{url} appeared (dated {date})"
        if parsedate_to_datetime(date) > parsedate_to_datetime(before):
            return f"OS package updates: {url} is dated {date} (the last image saw {before})"
    return None


def current_os_marker(parent_image: str) -> dict[str, str] | None:
    """The mirror's marker for a bootstrap parent (None for other parents)."""
    from kiln.model.parent import parse_parent_image

    parent = parse_parent_image(parent_image)
    if parent.kind != "bootstrap" or parent.distribution not in MIRRORS:
        return None
    assert parent.suite is not None
    return os_release_marker(parent.distribution, parent.suite)


# --- parent images -------------------------------------------------------------------------------


def newest_parent_ami(arn_filter: str, *, region: str = "local") -> str:
    """The AMI a build would start from now for an image-ARN parent (the build's own resolution)."""
    from kiln.services.builds.plan import newest_available_image_ami

    return newest_available_image_ami(arn_filter, region=region)


# --- the decision --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Snapshot:
    """What the decision needs, read in one transaction."""

    last_image: str | None
    last_recipe: str | None
    resolved: dict[str, Any]
    last_marker: dict[str, str] | None
    recipe_arn: str
    parent_image: str
    component_changes: list[str]


def _snapshot(pipeline_arn: str) -> _Snapshot:
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.images import ImageBuild
    from kiln.db.tables.pipelines import PipelineExecutionRow
    from kiln.services.components.resource import resolve_component
    from kiln.services.pipelines.resource import find_pipeline, recipe_of

    with session() as db:
        pipeline = find_pipeline(db, pipeline_arn)
        recipe = recipe_of(db, pipeline.body)
        last = db.scalars(
            select(ImageBuild)
            .where(ImageBuild.pipeline_arn == pipeline.arn, ImageBuild.status == "AVAILABLE")
            .order_by(ImageBuild.date_created.desc(), ImageBuild.build_number.desc())
        ).first()
        marker = None
        changes: list[str] = []
        resolved: dict[str, Any] = {}
        if last is not None:
            resolved = dict(last.resolved_inputs or {})
            execution = db.scalars(
                select(PipelineExecutionRow).where(PipelineExecutionRow.image_arn == last.arn)
            ).first()
            marker = execution.os_marker if execution is not None else None
            used = [entry.get("arn") for entry in resolved.get("components") or []]
            for index, entry in enumerate(recipe.components):
                now = resolve_component(entry["componentArn"], db=db, field=f"components[{index}].componentArn").arn
                before = used[index] if index < len(used) else None
                if now != before:
                    changes.append(
                        f"component {entry['componentArn']} now resolves to {now} (the last image used {before})"
                    )
        return _Snapshot(
            last_image=last.arn if last else None,
            last_recipe=last.recipe_arn if last else None,
            resolved=resolved,
            last_marker=marker,
            recipe_arn=recipe.arn,
            parent_image=recipe.parent_image,
            component_changes=changes,
        )


def check_dependency_updates(pipeline_arn: str) -> DependencyCheck:
    """Should a scheduled run of the pipeline build? Raises KilnError when it cannot tell (a recipe,
    component or parent that no longer resolves, an unreachable mirror)."""
    from kiln.model.parent import ParentImage, parse_parent_image

    snap = _snapshot(pipeline_arn)
    # A container recipe's oci: parent (an image of the region's layout) has nothing to compare: like an AMI id.
    parent = ParentImage("ami", snap.parent_image) if snap.parent_image.startswith("oci:") \
        else parse_parent_image(snap.parent_image)
    try:
        marker = current_os_marker(snap.parent_image) if parent.kind == "bootstrap" else None
        unreachable: OsCheckFailed | None = None
    except OsCheckFailed as error:  # only an error when the answer depends on it
        marker, unreachable = None, error
    if snap.last_image is None:
        return DependencyCheck(True, "the pipeline has no successful image yet", marker)
    if not snap.resolved:
        return DependencyCheck(True, f"the last image {snap.last_image} recorded no build inputs", marker)
    if snap.recipe_arn != snap.last_recipe:
        return DependencyCheck(
            True, f"the recipe now resolves to {snap.recipe_arn} (the last image used {snap.last_recipe})", marker
        )
    if parent.kind == "ssm":
        from kiln.services.builds.plan import ssm_parent

        account = pipeline_arn.split(":")[4]
        newest = ssm_parent(parent.value, region=snap.resolved.get("region") or "local", account=account)[0]
        if newest != snap.resolved.get("parent_ami"):
            return DependencyCheck(
                True,
                f"parent parameter ssm:{parent.value} now holds {newest} "
                f"(the last image used {snap.resolved.get('parent_ami')})",
                marker,
            )
    if parent.kind == "image":
        newest = newest_parent_ami(parent.value, region=snap.resolved.get("region") or "local")
        if newest != snap.resolved.get("parent_ami"):
            return DependencyCheck(
                True,
                f"parent image {parent.value} now resolves to {newest} "
                f"(the last image used {snap.resolved.get('parent_ami')})",
                marker,
            )
    if snap.component_changes:
        return DependencyCheck(True, snap.component_changes[0], marker)
    if unreachable is not None:
        raise unreachable
    if marker is not None:
        why = os_updates_since(snap.last_marker, marker)
        if why is not None:
            return DependencyCheck(True, why, marker)
    return DependencyCheck(False, f"no dependency updates since {snap.last_image}", marker)
