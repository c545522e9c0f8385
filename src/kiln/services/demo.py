"""``kiln demo``: the main job end to end — a hardened, tested nginx image on Debian bookworm.

Creates what the demo's distribution needs (regions ``us-east-1`` and ``eu-west-1``, the consumer
account ``111122223333``), applies ``examples/demo.yaml`` (components, recipe, infrastructure and
distribution configurations), builds the image (bootstrapping Debian once, cached afterwards) and
distributes it, and reports the image, its AMI, the AMI's tags, how many packages it holds and the
table of every AMI the distribution made (region, account, id, name).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiln.errors import NotFound

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "demo.yaml"  # package data
DEMO_REGIONS = ("us-east-1", "eu-west-1")
DEMO_CONSUMER = ("111122223333", "demo-consumer")


def prepare_demo_world() -> None:
    """The regions and the account ``examples/demo.yaml`` distributes to (kept when they exist)."""
    from kiln.services.accounts.accounts import account_exists, create_account
    from kiln.services.accounts.regions import create_region, list_regions

    existing = {region["RegionName"] for region in list_regions()}
    for region in DEMO_REGIONS:
        if region not in existing:
            create_region(region)
    account_id, name = DEMO_CONSUMER
    if not account_exists(account_id):
        create_account(name, account_id=account_id)


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
    prepare_demo_world()
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
    say("")
    say("distributed")
    say(outputs_table(image["outputResources"]["amis"]))
    say(f"took      {elapsed:.1f} s" + (f" (reused {image['kilnCachedFrom']})" if image.get("kilnCachedFrom") else ""))
    return {"image": image, "ami": info.to_ec2(), "packageCount": package_count, "seconds": round(elapsed, 1),
            "outputResources": image["outputResources"]}


def outputs_table(amis: list[dict[str, Any]]) -> str:
    """``outputResources.amis`` as aligned text: region, account, AMI id and name, nothing cut."""
    rows = [("REGION", "ACCOUNT", "AMI", "NAME")] + [
        (ami["region"], ami["accountId"], ami["image"], ami["name"]) for ami in amis
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)
