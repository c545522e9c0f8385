"""Test helpers for lifecycle tests, including FAKE candidate sources and FAKE actions.

The real image store and its AMIs land on another branch; until the integrator adds real-store
tests, the runner is exercised against ``FakeWorld``: a JSON file holding images, AMIs and
snapshots, which ``FakeCandidateSource`` reads and ``FakeActions`` changes (durably, one action at
a time, logging each effective change), so that separate processes can share it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kiln.model.lifecycle import CreateLifecyclePolicyRequest, LifecyclePolicy, parse
from kiln.services.lifecycle.rules import AmiCandidate, ImageCandidate

AS_OF = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def ami(
    image_id: str,
    *,
    region: str = "local",
    days_old: float = 10,
    snapshots: dict[str, int] | None = None,
    **fields: Any,
) -> AmiCandidate:
    snaps = snapshots if snapshots is not None else {f"snap-{image_id.removeprefix('ami-')}": 1000}
    return AmiCandidate(
        image_id=image_id,
        region=region,
        account=fields.pop("account", "123456789012"),
        creation_date=AS_OF - timedelta(days=days_old),
        snapshot_ids=tuple(snaps),
        unique_bytes=dict(snaps),
        **fields,
    )


def image(
    build: int,
    *,
    recipe: str = "web",
    version: str = "1.0.0",
    days_old: float = 10,
    created: datetime | None = None,
    status: str = "AVAILABLE",
    tags: dict[str, str] | None = None,
    amis: list[AmiCandidate] | None = None,
) -> ImageCandidate:
    return ImageCandidate(
        arn=f"arn:aws:imagebuilder:local:123456789012:image/{recipe}/{version}/{build}",
        name=recipe,
        semantic_version=version,
        build_version=build,
        recipe_name=recipe,
        recipe_version=version,
        date_created=created or AS_OF - timedelta(days=days_old),
        tags=tags or {},
        status=status,
        amis=tuple(amis or ()),
    )


def policy(
    *details: dict[str, Any],
    recipes: list[tuple[str, str]] | None = None,
    tags: dict[str, str] | None = None,
    resource_type: str = "AMI_IMAGE",
) -> CreateLifecyclePolicyRequest:
    selection: dict[str, Any] = (
        {"tagMap": tags}
        if tags
        else {"recipes": [{"name": n, "semanticVersion": v} for n, v in (recipes or [("web", "x.x.x")])]}
    )
    return parse(
        CreateLifecyclePolicyRequest, body(*details, selection=selection, resource_type=resource_type)
    )


def body(
    *details: dict[str, Any],
    selection: dict[str, Any] | None = None,
    name: str = "retire-old",
    resource_type: str = "AMI_IMAGE",
) -> dict[str, Any]:
    return {
        "name": name,
        "executionRole": "KilnLifecycleRole",
        "resourceType": resource_type,
        "policyDetails": list(details) or [rule("DELETE", "AGE", 30, "DAYS")],
        "resourceSelection": selection or {"recipes": [{"name": "web", "semanticVersion": "x.x.x"}]},
    }


def rule(
    action: str,
    kind: str,
    value: int,
    unit: str | None = None,
    *,
    retain: int | None = None,
    amis: bool = True,
    snapshots: bool = False,
    exclusions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    flt: dict[str, Any] = {"type": kind, "value": value}
    if unit:
        flt["unit"] = unit
    if retain:
        flt["retainAtLeast"] = retain
    include: dict[str, Any] = {"amis": amis}
    if snapshots:
        include["snapshots"] = True
    out: dict[str, Any] = {"action": {"type": action, "includeResources": include}, "filter": flt}
    if exclusions:
        out["exclusionRules"] = exclusions
    return out


# ------------------------------------------------------------------------------------------- FAKE world


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$t": value.isoformat()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$t"}:
            return datetime.fromisoformat(value["$t"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class FakeWorld:
    """FAKE store state in one JSON file, rewritten atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def save_images(self, images: list[ImageCandidate]) -> None:
        data = [{**asdict(i), "amis": [asdict(a) for a in i.amis]} for i in images]
        snaps = sorted({s for i in images for a in i.amis for s in a.snapshot_ids})
        self._write({"images": _encode(data), "snapshots": snaps})

    def load(self) -> dict[str, Any]:
        return _decode(json.loads(self.path.read_text()))

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as handle:
            json.dump(_encode(data), handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def images(self) -> list[ImageCandidate]:
        out = []
        for raw in self.load()["images"]:
            amis = tuple(AmiCandidate(**a) for a in raw.pop("amis"))
            out.append(ImageCandidate(**raw, amis=amis))
        return out


class FakeCandidateSource:
    """FAKE CandidateSource: every image in the FakeWorld."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world

    def gather(self, policy: LifecyclePolicy) -> list[ImageCandidate]:
        return self.world.images()


class FakeCrash(BaseException):
    """Raised by FakeActions(crash_after=N): stands in for the process dying right after an action."""


class FakeActions:
    """FAKE Actions over a FakeWorld: idempotent, each effective change appended to ``log``.

    With ``pause_after=N`` the process sleeps after its N-th effective change (to be killed there).
    """

    def __init__(
        self,
        world: FakeWorld,
        log: Path,
        *,
        pause_after: int | None = None,
        crash_after: int | None = None,
        fail: set[str] | None = None,
        after_change: Callable[[int], None] | None = None,
    ):
        self.world, self.log, self.pause_after, self.fail = world, Path(log), pause_after, fail or set()
        self.crash_after, self.after_change = crash_after, after_change
        self.changes = 0

    def _change(self, verb: str, resource: str, mutate: Any) -> None:
        if resource in self.fail:
            raise RuntimeError(f"FAKE failure for {resource}")
        data = self.world.load()
        changed = mutate(data)
        if changed:
            self.world._write(data)
        with open(self.log, "a") as handle:
            handle.write(f"{verb} {resource}\n" if changed else f"noop {verb} {resource}\n")
            handle.flush()
            os.fsync(handle.fileno())
        if changed:
            self.changes += 1
            if self.pause_after is not None and self.changes >= self.pause_after:
                time.sleep(600)
            if self.after_change is not None:
                self.after_change(self.changes)
            if self.crash_after is not None and self.changes >= self.crash_after:
                raise FakeCrash(f"FAKE crash after {self.changes} changes")

    def _ami(self, data: dict[str, Any], image_id: str) -> dict[str, Any]:
        return next(a for i in data["images"] for a in i["amis"] if a["image_id"] == image_id)

    def _image(self, data: dict[str, Any], arn: str) -> dict[str, Any]:
        return next(i for i in data["images"] if i["arn"] == arn)

    def deprecate_ami(self, region: str, image_id: str, at: datetime) -> None:
        def go(data: dict[str, Any]) -> bool:
            entry = self._ami(data, image_id)
            if entry["deprecation_time"] is not None:
                return False
            entry["deprecation_time"] = at
            return True

        self._change("deprecate_ami", image_id, go)

    def disable_ami(self, region: str, image_id: str) -> None:
        def go(data: dict[str, Any]) -> bool:
            entry = self._ami(data, image_id)
            if entry["state"] == "disabled":
                return False
            entry["state"] = "disabled"
            return True

        self._change("disable_ami", image_id, go)

    def deregister_ami(self, region: str, image_id: str) -> None:
        def go(data: dict[str, Any]) -> bool:
            entry = self._ami(data, image_id)
            if entry["state"] == "deregistered":
                return False
            entry["state"] = "deregistered"
            return True

        self._change("deregister_ami", image_id, go)

    def delete_snapshot(self, region: str, snapshot_id: str) -> None:
        def go(data: dict[str, Any]) -> bool:
            if snapshot_id not in data["snapshots"]:
                return False
            data["snapshots"].remove(snapshot_id)
            return True

        self._change("delete_snapshot", snapshot_id, go)

    def set_image_status(self, arn: str, status: str) -> None:
        def go(data: dict[str, Any]) -> bool:
            entry = self._image(data, arn)
            if entry["status"] == status:
                return False
            entry["status"] = status
            return True

        self._change(f"set_image_status:{status}", arn, go)

    def mark_image_deleted(self, arn: str) -> None:
        self.set_image_status(arn, "DELETED")
