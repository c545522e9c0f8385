"""The fleet's reads at scale: 5,000 launch templates of 3 versions each (a third through
``resolve:ssm:`` parameters, 1,000 of them), in one account and region.

Reported: lifecycle's in-use lookup over every template's default and latest versions (goal: under
0.5 s, it runs once per lifecycle run), and DescribeLaunchTemplates / DescribeLaunchTemplateVersions
(``$Default`` and ``$Latest`` of every template, what an audit reads), best of 3 each.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.timing import best_of

TEMPLATES = int(os.environ.get("KILN_BENCH_FLEET_TEMPLATES", "5000"))
VERSIONS = 3
PARAMETERS = 1000
GOAL_SECONDS = 0.5


def _populate() -> None:
    from kiln.db.base import utcnow
    from kiln.db.engine import session
    from kiln.db.tables.fleet import LaunchTemplateRow, LaunchTemplateVersionRow
    from kiln.db.tables.parameters import ParameterRow, ParameterVersionRow
    from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION

    now, user = utcnow(), f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"
    with session() as db:
        for n in range(PARAMETERS):
            db.add(ParameterRow(id=n + 1, account_id=DEFAULT_ACCOUNT, region=DEFAULT_REGION, name=f"/golden/app-{n}",
                                latest_version=1, created_at=now))
        db.flush()
        db.add_all([ParameterVersionRow(parameter_id=n + 1, version=1, type="String", data_type="aws:ec2:image",
                                        value=f"ami-{n:017x}", modified_at=now, modified_by=user)
                    for n in range(PARAMETERS)])
        for n in range(TEMPLATES):
            db.add(LaunchTemplateRow(id=f"lt-{n:017x}", account_id=DEFAULT_ACCOUNT, region=DEFAULT_REGION,
                                     name=f"template-{n}", default_version=2, last_number=VERSIONS, tags={},
                                     created_at=now, created_by=user))
        db.flush()
        versions = []
        for n in range(TEMPLATES):
            for version in range(1, VERSIONS + 1):
                image = f"resolve:ssm:/golden/app-{n % PARAMETERS}" if n % 3 == 0 else f"ami-{(n * 7 + version):017x}"
                versions.append(LaunchTemplateVersionRow(
                    template_id=f"lt-{n:017x}", version=version, data={"ImageId": image, "InstanceType": "t3.micro"},
                    image_id=image, created_at=now, created_by=user))
        db.add_all(versions)


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="kiln-bench-launch-templates-") as work:
        os.environ["KILN_HOME"] = str(Path(work) / "home")
        from kiln.db.engine import reset_engines, session

        reset_engines()
        from kiln.services.common.references import images_used_by_launch_templates
        from kiln.services.fleet import launch_templates

        started = time.perf_counter()
        _populate()
        setup_seconds = time.perf_counter() - started

        def in_use() -> dict[str, list[str]]:
            with session() as db:
                return images_used_by_launch_templates(db)

        in_use_seconds, users = best_of(in_use)
        templates_seconds, templates = best_of(launch_templates.describe_launch_templates)
        versions_seconds, versions = best_of(
            lambda: launch_templates.describe_launch_template_versions(versions=["$Default", "$Latest"]))
        return {
            "templates": TEMPLATES,
            "versions": TEMPLATES * VERSIONS,
            "parameters": PARAMETERS,
            "setup_seconds": round(setup_seconds, 3),
            "in_use_lookup_seconds_best_of_3": round(in_use_seconds, 3),
            "in_use_goal_seconds": GOAL_SECONDS,
            "in_use_vs_goal": round(in_use_seconds / GOAL_SECONDS, 3),
            "amis_in_use": len(users),
            "describe_launch_templates_seconds": round(templates_seconds, 3),
            "describe_default_and_latest_versions_seconds": round(versions_seconds, 3),
            "templates_described": len(templates["LaunchTemplates"]),
            "versions_described": len(versions["LaunchTemplateVersions"]),
        }
