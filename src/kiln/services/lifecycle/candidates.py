"""Lifecycle policies over kiln's own images: candidates from the image records, the image store and
the runtime; actions through the store's EC2 calls.

Registered as the lifecycle runner's defaults, so ``kiln lifecycle preview|apply`` see real images.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kiln.errors import NotFound
from kiln.home import DEFAULT_ACCOUNT
from kiln.model.states import LIVE_INSTANCE_STATES
from kiln.services.lifecycle.rules import AmiCandidate, ImageCandidate

IN_USE_STATES = LIVE_INSTANCE_STATES


def _users_by_image() -> dict[str, list[str]]:
    """AMI id → what uses it: live instances, launch templates' default and latest versions, and the
    versions Auto Scaling groups launch from."""
    from kiln.db.engine import session
    from kiln.runtime.instances import list_instances
    from kiln.services.common.references import images_used_by_auto_scaling_groups, images_used_by_launch_templates

    users: dict[str, list[str]] = {}
    for instance in list_instances(states=IN_USE_STATES):
        if instance.image_id:
            users.setdefault(instance.image_id, []).append(f"instance {instance.id} ({instance.state})")
    with session() as db:
        for image_id, templates in images_used_by_launch_templates(db).items():
            users.setdefault(image_id, []).extend(templates)
        for image_id, groups in images_used_by_auto_scaling_groups(db).items():
            users.setdefault(image_id, []).extend(groups)
    return users


def _shared_accounts(owner: str, permissions: list[dict[str, str]], accounts: list[str]) -> tuple[str, ...]:
    """The accounts other than the owner that may launch the AMI now: named ones, and (evaluated with
    their current membership, as a launch is) the members of granted organizations and OUs."""
    from kiln.services.ec2.callers import principal

    shared = {entry["UserId"] for entry in permissions if "UserId" in entry}
    if any("OrganizationArn" in entry or "OrganizationalUnitArn" in entry for entry in permissions):
        shared.update(account for account in accounts if principal(account).granted(permissions))
    shared.discard(owner)
    return tuple(sorted(shared))


def _ami_candidate(
    ami: dict[str, Any], users: dict[str, list[str]], unique: dict[str, int], accounts: list[str]
) -> AmiCandidate | None:
    from kiln.store import api as store

    try:
        info = store.get_image(ami["image"], region=ami["region"])
    except NotFound:
        return None
    if info.state == "deregistered":
        return None
    return AmiCandidate(
        image_id=info.id,
        region=info.region,
        account=info.owner_id,
        creation_date=info.creation_date,
        deprecation_time=info.deprecation_time,
        state=info.state,
        public=info.public,
        shared_accounts=_shared_accounts(info.owner_id, info.launch_permissions, accounts),
        last_launched=info.last_launched_time,
        tags=dict(info.tags),
        snapshot_ids=tuple(info.snapshot_ids),
        unique_bytes={snap: unique.get(snap, 0) for snap in info.snapshot_ids},
        in_use_by=tuple(users.get(info.id, ())),
        deregistration_protected=info.deregistration_protection != "disabled",
    )


class StoreCandidateSource:
    """The Image Builder images of the policy's account built in the policy's region (Image Builder
    resources are regional, as the policy is), each with its AMIs in every region they were
    distributed to, as the store sees them now — only those the policy's account owns: a
    distribution's copies in other accounts are theirs, never this policy's to act on."""

    def gather(self, policy: Any) -> list[ImageCandidate]:
        from kiln.services.accounts.accounts import list_accounts
        from kiln.services.builds import records as images
        from kiln.services.lifecycle.policies import scope
        from kiln.store import api as store

        users = _users_by_image()
        accounts = [account["Id"] for account in list_accounts()]
        owner, home = scope(policy.arn)
        unique: dict[str, int] = {}
        regions: set[str] = set()
        shapes = [shape for shape in images.list_images() if scope(shape["arn"]) == (owner, home)]
        for shape in shapes:
            regions.update(ami["region"] for ami in shape["outputResources"]["amis"] if images.is_local(ami))
        for region in sorted(regions):
            unique.update({snap.id: snap.unique_bytes for snap in store.list_snapshots(region=region)})
        candidates = []
        for shape in shapes:
            if shape["state"]["status"] == "DELETED":
                continue
            version, build = shape["version"].split("/")
            amis = [
                candidate
                for ami in shape["outputResources"]["amis"]
                if ami.get("accountId", DEFAULT_ACCOUNT) == owner and images.is_local(ami)
                and (candidate := _ami_candidate(ami, users, unique, accounts)) is not None
            ]
            candidates.append(
                ImageCandidate(
                    arn=shape["arn"],
                    name=shape["name"],
                    semantic_version=version,
                    build_version=int(build),
                    recipe_name=shape["name"],
                    recipe_version=version,
                    date_created=datetime.fromisoformat(shape["dateCreated"]),
                    tags=dict(shape.get("tags") or {}),
                    status=shape["state"]["status"],
                    amis=tuple(amis),
                )
            )
        return candidates


class StoreActions:
    """EC2 semantics through the image store; each call succeeds when already done."""

    def deprecate_ami(self, region: str, image_id: str, at: datetime) -> None:
        from kiln.store import api as store

        store.enable_image_deprecation(image_id, at, region=region)
        store.create_tags(image_id, {"DeprecatedBy": "EC2 Image Builder"})

    def disable_ami(self, region: str, image_id: str) -> None:
        from kiln.store import api as store

        if store.get_image(image_id, region=region).state != "disabled":
            store.disable_image(image_id, region=region)

    def deregister_ami(self, region: str, image_id: str) -> None:
        from kiln.services.publishing.removals import remove_published
        from kiln.store import api as store

        # the AMIs published to AWS from it go too (kept and retried while AWS cannot be reached)
        remove_published(image_id, region, f"lifecycle deregistered {image_id}")
        try:
            info = store.get_image(image_id, region=region)
        except NotFound:
            return
        if info.state != "deregistered":
            store.deregister_image(image_id, region=region, delete_snapshots=False)

    def delete_snapshot(self, region: str, snapshot_id: str) -> None:
        from kiln.store import api as store

        try:
            store.delete_snapshot(snapshot_id, region=region)
        except NotFound:
            return

    def set_image_status(self, arn: str, status: str) -> None:
        from kiln.services.builds import records as images
        images.set_status(arn, status, f"lifecycle policy set {status}")

    def mark_image_deleted(self, arn: str) -> None:
        from kiln.services.builds import records as images
        images.set_status(arn, "DELETED", "deleted by a lifecycle policy")
