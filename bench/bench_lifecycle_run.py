"""A lifecycle run deleting 1,000 images whose snapshots share blobs, on the real store.

1,001 AMIs are children of one busybox parent (every snapshot shares the parent's layer, and each
adds one small layer), recorded as Image Builder images of one recipe. A COUNT policy keeping the
newest deletes the other 1,000 with their snapshots. Reported: the run's time per image, and the
bytes the preview promised vs the layer bytes that left the disk.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

IMAGES = int(os.environ.get("KILN_BENCH_LIFECYCLE_IMAGES", "1000"))


def _blob_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in (home / "regions" / "local" / "blobs" / "sha256").iterdir())


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="kiln-bench-lifecycle-") as work:
        home = Path(work) / "home"
        os.environ["KILN_HOME"] = str(home)
        from kiln.db.base import utcnow
        from kiln.db.engine import reset_engines

        reset_engines()
        from kiln.services.builds import records as images
        from kiln.services.lifecycle.policies import create_policy
        from kiln.services.lifecycle.runner import preview, run
        from kiln.store import api
        from kiln.store.busybox import busybox_rootfs

        parent = api.import_rootfs(busybox_rootfs(Path(work) / "busybox"), name="parent")
        started = time.perf_counter()
        for n in range(IMAGES + 1):
            upper = Path(work) / f"upper-{n}"
            (upper / "etc").mkdir(parents=True)
            (upper / "etc" / "build").write_text(f"build {n}\n" * 200)
            ami = api.create_image_from_upper(parent, upper, name=f"web-{n}")
            arn = images.create_image(name="web", version="1.0.0", recipe_arn="arn:recipe", infrastructure_arn="arn:i")
            images.finish_available(arn, [{"region": "local", "image": ami, "accountId": "123456789012"}])
        setup_seconds = time.perf_counter() - started
        policy = create_policy({
            "name": "keep-one", "executionRole": "arn:aws:iam::123456789012:role/lifecycle",
            "resourceType": "AMI_IMAGE",
            "policyDetails": [{
                "action": {"type": "DELETE", "includeResources": {"amis": True, "snapshots": True}},
                "filter": {"type": "COUNT", "value": 1},
            }],
            "resourceSelection": {"recipes": [{"name": "web", "semanticVersion": "1.0.0"}]},
        })
        started = time.perf_counter()
        _, plan = preview(policy, as_of=utcnow())
        preview_seconds = time.perf_counter() - started
        promised = plan.summary()["bytes_freed"]
        before = _blob_bytes(home)
        started = time.perf_counter()
        execution = run(policy, as_of=utcnow())
        run_seconds = time.perf_counter() - started
        freed = before - _blob_bytes(home)
        deleted = sum(1 for image in images.list_images() if image["state"]["status"] == "DELETED")
        reset_engines()
    return {
        "images_deleted": deleted,
        "execution_status": execution.state.status.value,
        "setup_seconds": round(setup_seconds, 1),
        "preview_seconds": round(preview_seconds, 2),
        "run_seconds": round(run_seconds, 1),
        "run_ms_per_image": round(1000 * run_seconds / max(deleted, 1), 1),
        "bytes_promised_by_preview": promised,
        "blob_bytes_freed": freed,
        "freed_minus_promised_bytes": freed - promised,
        "note": "the difference is the deleted AMIs' OCI manifests and configs, not snapshot bytes",
    }
