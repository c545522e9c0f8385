"""Store verification: re-hash every blob, check every reference, quarantine what is corrupt."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from kiln.db.engine import session
from kiln.db.tables.store import StoreImage, StoreSnapshot, StoreSnapshotLayer
from kiln.errors import NotFound
from kiln.store.containers import is_container_ref
from kiln.store.layout import Descriptor, Layout
from kiln.store.referrers import referrers_tag, subjects_listed


@dataclass
class FsckReport:
    region: str
    blobs_checked: int = 0
    corrupt: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.missing or self.problems)


def fsck(region: str = "local") -> FsckReport:
    layout = Layout.for_region(region)
    report = FsckReport(region)
    for digest in layout.blobs.all_digests():
        report.blobs_checked += 1
        if layout.blobs.hash_file(digest) != digest:
            report.corrupt.append(digest)
            layout.blobs.quarantine(digest)
            report.quarantined.append(digest)

    def need(digest: str, what: str) -> bool:
        try:
            layout.blobs.path(digest)
            return True
        except NotFound as error:
            report.missing.append(digest)
            report.problems.append(f"{what} references {digest}: {error}")
            return False

    refs = layout.refs()
    for ref, digest in refs.items():
        if not need(digest, f"index.json ref {ref}"):
            continue
        manifest = layout.read_json_blob(digest)
        need(manifest["config"]["digest"], f"manifest of {ref} (config)")
        for layer in manifest["layers"]:
            need(layer["digest"], f"manifest of {ref} (layer)")
    with session() as db:
        for snap_id, digest in db.execute(
            select(StoreSnapshotLayer.snapshot_id, StoreSnapshotLayer.digest)
            .join(StoreSnapshot, StoreSnapshot.id == StoreSnapshotLayer.snapshot_id)
            .where(StoreSnapshot.region == region)
        ):
            need(digest, f"snapshot {snap_id}")
        images = list(db.execute(select(StoreImage).where(StoreImage.region == region)).scalars())
    registered = {i.id: i for i in images if i.state != "deregistered"}
    registered_manifests = {i.manifest_digest for i in registered.values()} | set(refs.values())
    for subject, listing in subjects_listed(layout).items():
        if subject not in registered_manifests:
            report.problems.append(f"index.json has referrers of {subject}, no registered AMI's manifest")
        if not need(listing, f"referrers tag {referrers_tag(subject)}"):
            continue
        for referrer in layout.read_json_blob(listing).get("manifests", []):
            if need(referrer["digest"], f"referrers of {subject} (artifact manifest)"):
                for layer in layout.read_json_blob(referrer["digest"]).get("layers", []):
                    need(layer["digest"], f"artifact {referrer['digest']} (layer)")
    for ref in refs:
        if ref not in registered and not is_container_ref(ref):
            report.problems.append(f"index.json ref {ref} is not a registered AMI")
    for ami_id, image in registered.items():
        if ami_id not in refs and image.manifest_digest and need(image.manifest_digest, f"AMI {ami_id}"):
            size = layout.blobs.size(image.manifest_digest)
            layout.add_ref(
                ami_id, Descriptor("application/vnd.oci.image.manifest.v1+json", image.manifest_digest, size)
            )
            report.repaired.append(f"re-added index.json ref for {ami_id}")
    return report
