"""``kiln demo``: the main job end to end — a hardened, tested nginx image on Debian bookworm.

Applies ``examples/demo.yaml`` (components, recipe, infrastructure and distribution configurations),
builds the image (bootstrapping Debian once, cached afterwards), and reports the image, its AMI, the
AMI's tags and how many packages it holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiln.errors import NotFound

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "demo.yaml"  # package data


def demo_file() -> Path:
    if not EXAMPLE.exists():
        raise NotFound(f"{EXAMPLE} not found", hint="run kiln demo from a source checkout of kiln")
    return EXAMPLE


def run_build_demo(*, say: Callable[[str], None], progress: Callable[[str], None],
                   use_cache: bool = True) -> dict[str, Any]:
    from kiln.services.apply import apply_file
    from kiln.services.builds.workflow import create_and_build
    from kiln.store import api as store

    started = time.monotonic()
    say(f"applying {demo_file()}")
    applied = apply_file(demo_file())
    arns = {outcome.kind: outcome.arn for outcome in applied.outcomes}
    for outcome in applied.outcomes:
        say(f"  {outcome.status:<9} {outcome.arn}")
    say("building (the first run bootstraps Debian bookworm and caches it)")
    image = create_and_build(
        recipe_arn=arns["ImageRecipe"],
        infrastructure_arn=arns["InfrastructureConfiguration"],
        distribution_arn=arns["DistributionConfiguration"],
        use_cache=use_cache,
        progress=progress,
    )
    ami = image["outputResources"]["amis"][0]
    info = store.get_image(ami["image"], region=ami["region"])
    from kiln.services.builds.records import packages

    package_count = len(packages(image["arn"]))
    elapsed = time.monotonic() - started
    say("")
    say(f"image     {image['arn']}  {image['state']['status']}")
    say(f"os        {image.get('osVersion', '?')}, {package_count} packages")
    say(f"ami       {info.id}  {info.name}")
    for key, value in sorted(info.tags.items()):
        say(f"  tag     {key} = {value}")
    say(f"took      {elapsed:.1f} s" + (f" (reused {image['kilnCachedFrom']})" if image.get("kilnCachedFrom") else ""))
    return {"image": image, "ami": info.to_ec2(), "packageCount": package_count, "seconds": round(elapsed, 1)}
