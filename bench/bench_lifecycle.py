"""Lifecycle rule evaluation over 100,000 images in 20 recipes (goal: under 2 s), plus rendering."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from kiln.model.lifecycle import CreateLifecyclePolicyRequest, parse
from kiln.services.lifecycle import preview as lifecycle_preview
from kiln.services.lifecycle.rules import AmiCandidate, ImageCandidate, evaluate

AS_OF = datetime(2026, 6, 15, tzinfo=UTC)
IMAGES = 100_000
RECIPES = 20
GOAL_SECONDS = 2.0


def _images(count: int, recipes: int) -> list[ImageCandidate]:
    rng = random.Random(7)
    out = []
    for n in range(count):
        recipe, version = f"recipe-{n % recipes}", f"1.{(n // recipes) % 5}.0"
        sid = f"snap-{n:017x}"
        ami = AmiCandidate(
            image_id=f"ami-{n:017x}",
            region=("local", "eu-west-1")[n % 2],
            account="123456789012",
            creation_date=AS_OF - timedelta(days=rng.uniform(0, 700)),
            last_launched=AS_OF - timedelta(days=rng.uniform(0, 90)) if n % 7 == 0 else None,
            snapshot_ids=(sid,),
            unique_bytes={sid: rng.randrange(1 << 20, 1 << 30)},
            in_use_by=("instance i-0123456789abcdef0 (running)",) if n % 97 == 0 else (),
            tags={"Keep": "yes"} if n % 53 == 0 else {},
        )
        out.append(
            ImageCandidate(
                arn=f"arn:aws:imagebuilder:local:123456789012:image/{recipe}/{version}/{n}",
                name=recipe,
                semantic_version=version,
                build_version=n,
                recipe_name=recipe,
                recipe_version=version,
                date_created=ami.creation_date,
                status=("AVAILABLE", "DEPRECATED", "DISABLED", "FAILED")[n % 4],
                amis=(ami,),
            )
        )
    return out


def _policy() -> CreateLifecyclePolicyRequest:
    exclusions = {"amis": {"lastLaunched": {"value": 30, "unit": "DAYS"}, "tagMap": {"Keep": "yes"}}}
    return parse(
        CreateLifecyclePolicyRequest,
        {
            "name": "bench",
            "executionRole": "KilnLifecycleRole",
            "resourceType": "AMI_IMAGE",
            "policyDetails": [
                {
                    "action": {"type": "DEPRECATE", "includeResources": {"amis": True}},
                    "filter": {"type": "AGE", "value": 3, "unit": "MONTHS"},
                },
                {
                    "action": {"type": "DISABLE", "includeResources": {"amis": True}},
                    "filter": {"type": "AGE", "value": 6, "unit": "MONTHS"},
                },
                {
                    "action": {"type": "DELETE", "includeResources": {"amis": True, "snapshots": True}},
                    "filter": {"type": "AGE", "value": 1, "unit": "YEARS", "retainAtLeast": 5},
                    "exclusionRules": exclusions,
                },
            ],
            "resourceSelection": {
                "recipes": [{"name": f"recipe-{i}", "semanticVersion": "1.x.x"} for i in range(RECIPES)]
            },
        },
    )


def run() -> dict:
    images = _images(IMAGES, RECIPES)
    policy = _policy()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        plan = evaluate(policy, images, as_of=AS_OF)
        best = min(best, time.perf_counter() - started)
    started = time.perf_counter()
    text = lifecycle_preview.to_text(plan)
    render_text = time.perf_counter() - started
    started = time.perf_counter()
    lifecycle_preview.to_json(plan)
    render_json = time.perf_counter() - started
    summary = plan.summary()
    return {
        "images": IMAGES,
        "recipes": RECIPES,
        "evaluate_seconds_best_of_3": round(best, 3),
        "goal_seconds": GOAL_SECONDS,
        "evaluate_vs_goal": round(best / GOAL_SECONDS, 3),
        "images_per_second": int(IMAGES / best),
        "render_text_seconds": round(render_text, 3),
        "render_json_seconds": round(render_json, 3),
        "text_bytes": len(text),
        "images_acted_on": IMAGES - summary.get("images_none", 0),
        "bytes_freed": summary["bytes_freed"],
    }
