"""Artifacts about an image (SBOMs) stored beside it in the region's OCI layout, found as its referrers.

An artifact is an OCI image manifest (image-spec v1.1) with an ``artifactType``, the empty config
(``application/vnd.oci.empty.v1+json``, ``{}``), the artifact itself as its one layer, and a
``subject`` naming the image's manifest. ``index.json`` lists the artifact manifest (descriptor with
its ``artifactType``, no ref name: oras-style stores walk it for ``subject``), and, as the
distribution-spec's referrers tag schema has it, an image index tagged ``sha256-<subject hex>`` lists
every referrer of that subject (what registries' fallback readers such as regclient's look up).
"""

from __future__ import annotations

import hashlib
from typing import Any

from kiln.errors import NotFound
from kiln.store.blobs import batched_dir_sync
from kiln.store.layout import INDEX_TYPE, MANIFEST_TYPE, REF_NAME, Descriptor, Layout, canonical_json

EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_DATA = b"{}"
EMPTY = Descriptor(EMPTY_TYPE, "sha256:" + hashlib.sha256(EMPTY_DATA).hexdigest(), len(EMPTY_DATA))
CREATED = "org.opencontainers.image.created"


def referrers_tag(subject_digest: str) -> str:
    """The referrers tag schema's tag for a subject: ``<alg>-<hex>``."""
    algorithm, _, encoded = subject_digest.partition(":")
    return f"{algorithm}-{encoded}"


def _is_tag_entry(entry: dict[str, Any]) -> bool:
    return entry.get("mediaType") == INDEX_TYPE and "-" in entry.get("annotations", {}).get(REF_NAME, "")


def _tag_entry(index: dict[str, Any], subject_digest: str) -> dict[str, Any] | None:
    tag = referrers_tag(subject_digest)
    return next((m for m in index.get("manifests", [])
                 if _is_tag_entry(m) and m["annotations"][REF_NAME] == tag), None)


def referrers(layout: Layout, subject_digest: str, artifact_type: str | None = None) -> list[dict[str, Any]]:
    """The descriptors of the subject's referrers (as the referrers API answers them), by artifactType."""
    entry = _tag_entry(layout.read_index(), subject_digest)
    if entry is None:
        return []
    listed = layout.read_json_blob(entry["digest"]).get("manifests", [])
    return [m for m in listed if artifact_type is None or m.get("artifactType") == artifact_type]


def _referrers_index(manifests: list[dict[str, Any]]) -> bytes:
    ordered = sorted(manifests, key=lambda m: (m.get("artifactType", ""), m["digest"]))
    return canonical_json({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": ordered})


def attach(
    layout: Layout, subject: Descriptor, artifact_type: str, data: bytes, *, created: str,
) -> tuple[Descriptor, list[str]]:
    """Store ``data`` as the subject's referrer of ``artifact_type``, replacing the one it had of that
    type. Returns the artifact manifest's descriptor and the digests no longer referenced (the caller
    deletes them once the index is written)."""
    descriptors, stale = attach_many(layout, subject, [(artifact_type, data)], created=created)
    return descriptors[0], stale


def _artifact_entry(layout: Layout, subject: Descriptor, artifact_type: str, data: bytes,
                    created: str) -> dict[str, Any]:
    """The artifact's blobs written (the data, the empty config, its manifest); its index entry."""
    blob = Descriptor(artifact_type, layout.blobs.put_bytes(data), len(data))
    annotations = {CREATED: created}
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": artifact_type,
        "config": EMPTY.as_dict(),
        "layers": [blob.as_dict()],
        "subject": subject.as_dict(),
        "annotations": annotations,
    }
    manifest_bytes = canonical_json(manifest)
    digest = layout.blobs.put_bytes(manifest_bytes)
    return {"mediaType": MANIFEST_TYPE, "digest": digest, "size": len(manifest_bytes),
            "artifactType": artifact_type, "annotations": annotations, "blob": blob.digest}


def attach_many(
    layout: Layout, subject: Descriptor, artifacts: list[tuple[str, bytes]], *, created: str,
) -> tuple[list[Descriptor], list[str]]:
    """:func:`attach` for several artifacts (one per type) in ONE ``index.json`` update: every blob is
    written first, then the index names them all at once (a crash before leaves only unreferenced
    blobs for gc, as with one artifact)."""
    with batched_dir_sync():  # blobs/ fsynced once, before index.json names them
        try:  # the shared empty config is there once any artifact was: a refresh (gc grace), not a write
            layout.blobs.refresh(EMPTY.digest)
        except (FileNotFoundError, NotFound):
            layout.blobs.put_bytes(EMPTY_DATA)
        written = [_artifact_entry(layout, subject, kind, data, created) for kind, data in artifacts]
        blobs = {entry.pop("blob") for entry in written}
        types = {entry["artifactType"] for entry in written}
        digests = {entry["digest"] for entry in written}
        with layout.locked():
            index = layout.read_index()
            previous = referrers(layout, subject.digest)
            replaced = [m["digest"] for m in previous if m.get("artifactType") in types and m["digest"] not in digests]
            listed = [m for m in previous if m["digest"] not in replaced and m["digest"] not in digests] + written
            listing = _referrers_index(listed)
            listing_digest = layout.blobs.put_bytes(listing)
            old_tag = _tag_entry(index, subject.digest)
            manifests = [m for m in index["manifests"] if m is not old_tag and m.get("digest") not in replaced
                         and m.get("digest") not in digests]
            manifests += written
            manifests.append({"mediaType": INDEX_TYPE, "digest": listing_digest, "size": len(listing),
                              "annotations": {REF_NAME: referrers_tag(subject.digest)}})
            index["manifests"] = manifests
            layout.write_index(index)
    stale = [old_tag["digest"]] if old_tag is not None and old_tag["digest"] != listing_digest else []
    for old in replaced:
        stale += [old, *_artifact_blobs(layout, old)]
    descriptors = [Descriptor(MANIFEST_TYPE, entry["digest"], entry["size"]) for entry in written]
    return descriptors, [d for d in stale if d not in blobs]


def _artifact_blobs(layout: Layout, manifest_digest: str) -> list[str]:
    """The artifact's own layers (the shared empty config stays for gc)."""
    try:
        manifest = layout.read_json_blob(manifest_digest)
    except (NotFound, ValueError):
        return []
    return [layer["digest"] for layer in manifest.get("layers", [])]


def detach_all(layout: Layout, subject_digest: str) -> list[str]:
    """Drop every referrer of the subject (and its tag) from ``index.json``; returns their blobs."""
    with layout.locked():
        index = layout.read_index()
        tag = _tag_entry(index, subject_digest)
        if tag is None:
            return []
        listed = [m["digest"] for m in referrers(layout, subject_digest)]
        index["manifests"] = [m for m in index["manifests"] if m is not tag and m.get("digest") not in listed]
        layout.write_index(index)
    doomed = [tag["digest"]]
    for digest in listed:
        doomed += [digest, *_artifact_blobs(layout, digest)]
    return doomed


def delete_unshared(layout: Layout, digests: list[str], keep: set[str] | None = None) -> None:
    """Delete blobs no other index entry still needs (the same SBOM bytes may belong to another image)."""
    if not digests:
        return
    needed = set(keep or ()) | live_referrer_blobs(layout)
    for digest in dict.fromkeys(digests):
        if digest not in needed:
            layout.blobs.delete(digest)


def live_referrer_blobs(layout: Layout, subjects: set[str] | None = None) -> set[str]:
    """Every blob the referrer entries of ``index.json`` need (only those of ``subjects`` when given)."""
    live: set[str] = set()
    for entry in layout.read_index().get("manifests", []):
        if not _is_tag_entry(entry):
            continue
        tag = entry["annotations"][REF_NAME]
        algorithm, _, encoded = tag.partition("-")
        if subjects is not None and f"{algorithm}:{encoded}" not in subjects:
            continue
        live.add(entry["digest"])
        try:
            listed = layout.read_json_blob(entry["digest"]).get("manifests", [])
        except (NotFound, ValueError):
            continue
        for manifest in listed:
            live.add(manifest["digest"])
            live.add(EMPTY.digest)
            live.update(_artifact_blobs(layout, manifest["digest"]))
    return live


def subjects_listed(layout: Layout) -> dict[str, str]:
    """Subject manifest digest -> its referrers tag index digest, for every tag in ``index.json``."""
    found = {}
    for entry in layout.read_index().get("manifests", []):
        if _is_tag_entry(entry):
            algorithm, _, encoded = entry["annotations"][REF_NAME].partition("-")
            found[f"{algorithm}:{encoded}"] = entry["digest"]
    return found



def exported(layout: Layout, subject_digest: str) -> tuple[list[dict[str, Any]], list[str]]:
    """What an export of the subject carries so OCI tooling finds its referrers next to it, as the
    region's layout has them: the ``index.json`` entries (each artifact manifest with its
    ``artifactType``, and the ``sha256-<hex>`` referrers tag index) and every blob they need."""
    tag = _tag_entry(layout.read_index(), subject_digest)
    if tag is None:
        return [], []
    listed = layout.read_json_blob(tag["digest"]).get("manifests", [])
    entries = [*listed, tag]
    blobs = [tag["digest"]]
    for manifest in listed:
        blobs += [manifest["digest"], EMPTY.digest, *_artifact_blobs(layout, manifest["digest"])]
    return entries, list(dict.fromkeys(blobs))
