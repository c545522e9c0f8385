"""``kiln compliance audit`` at fleet scale: 10,000 running instances, 1,000 Auto Scaling groups and
5,000 launch templates of 3 versions (a third through ``resolve:ssm:`` parameters, 1,000 of them),
over 500 AMIs of which a fifth are past the rule's 30 days, with allowed images settings in audit
mode and a required tag.

The rows are written straight into the database (as the services would write them): launching
10,000 real sandboxes is not what is measured here — the audit only reads their records.

Reported: the whole audit (load + judge, what ``kiln compliance audit`` does before printing) and the
audit with its complete JSON shape, best of 3 each; goal under 1 s.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.timing import best_of

INSTANCES = int(os.environ.get("KILN_BENCH_COMPLIANCE_INSTANCES", "10000"))
GROUPS = 1000
TEMPLATES = 5000
VERSIONS = 3
PARAMETERS = 1000
AMIS = 500
GOAL_SECONDS = 1.0


def _ami(n: int) -> str:
    return f"ami-{n % AMIS:017x}"


def _populate() -> None:
    from kiln.db.base import utcnow
    from kiln.db.engine import session
    from kiln.db.tables.autoscaling import AutoScalingGroupRow
    from kiln.db.tables.fleet import AllowedImagesSettingsRow, LaunchTemplateRow, LaunchTemplateVersionRow
    from kiln.db.tables.instances import InstanceRecord
    from kiln.db.tables.parameters import ParameterRow, ParameterVersionRow
    from kiln.db.tables.store import StoreImage, StoreTag
    from kiln.home import DEFAULT_ACCOUNT as ACCOUNT
    from kiln.home import DEFAULT_REGION as REGION

    now, user = utcnow(), f"arn:aws:iam::{ACCOUNT}:root"
    with session() as db:
        db.add_all([StoreImage(id=_ami(n), region=REGION, owner_id=ACCOUNT, name=f"web-{n}", description="",
                               architecture="x86_64", root_device_type="ebs", state="available",
                               creation_date=now - timedelta(days=40 if n % 5 == 0 else 3))
                    for n in range(AMIS)])
        db.add_all([StoreTag(resource_id=_ami(n), key="kiln:Approved", value="true") for n in range(AMIS) if n % 7])
        db.add(AllowedImagesSettingsRow(account_id=ACCOUNT, region=REGION, state="audit-mode",
                                        criteria=[{"ImageNames": ["web-*"]}], include_own_images=True,
                                        updated_at=now))
        db.add_all([ParameterRow(id=n + 1, account_id=ACCOUNT, region=REGION, name=f"/golden/app-{n}",
                                 latest_version=1, created_at=now) for n in range(PARAMETERS)])
        db.flush()
        db.add_all([ParameterVersionRow(parameter_id=n + 1, version=1, type="String", data_type="aws:ec2:image",
                                        value=_ami(n * 3), modified_at=now, modified_by=user)
                    for n in range(PARAMETERS)])
        db.add_all([LaunchTemplateRow(id=f"lt-{n:017x}", account_id=ACCOUNT, region=REGION, name=f"template-{n}",
                                      default_version=2, last_number=VERSIONS, tags={}, created_at=now,
                                      created_by=user) for n in range(TEMPLATES)])
        db.flush()
        db.add_all([LaunchTemplateVersionRow(
            template_id=f"lt-{n:017x}", version=v, data={}, created_at=now, created_by=user,
            image_id=f"resolve:ssm:/golden/app-{n % PARAMETERS}" if n % 3 == 0 else _ami(n * 7 + v))
            for n in range(TEMPLATES) for v in range(1, VERSIONS + 1)])
        db.add_all([AutoScalingGroupRow(
            arn=f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:{n}:autoScalingGroupName/group-{n}",
            account_id=ACCOUNT, region=REGION, name=f"group-{n}", template_id=f"lt-{n * 5:017x}",
            template_version=("$Default", "$Latest", "1")[n % 3], min_size=0, max_size=20, desired_capacity=10,
            health_check_type="EC2", health_check_grace_period=0, tags=[], created_at=now) for n in range(GROUPS)])
        db.add_all([InstanceRecord(
            id=f"i-{n:017x}", image_id=_ami(n), account_id=ACCOUNT, region=REGION, instance_type="t3.micro",
            state="running", state_changed_at=now, root_device_type="ebs", network="none", hostname=f"i-{n}",
            vcpus=1, memory_mib=512, lower_dirs=[], paths={}, launch_time=now, owned=False,
            tags={"aws:autoscaling:groupName": f"group-{n % GROUPS}"}) for n in range(INSTANCES)])


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="kiln-bench-compliance-") as work:
        os.environ["KILN_HOME"] = str(Path(work) / "home")
        from kiln.db.engine import reset_engines

        reset_engines()
        from dataclasses import replace

        from kiln.services.compliance.audit import audit
        from kiln.services.compliance.rules import DEFAULT

        rule = replace(DEFAULT, required_tags={"kiln:Approved": "true"})
        started = time.perf_counter()
        _populate()
        setup_seconds = time.perf_counter() - started
        audit_seconds, report = best_of(lambda: audit(rule))
        shaped_seconds, shape = best_of(lambda: audit(rule).shape())
        return {
            "instances": INSTANCES, "groups": GROUPS, "templates": TEMPLATES, "versions": TEMPLATES * VERSIONS,
            "parameters": PARAMETERS, "amis": AMIS,
            "rows_written_directly": True,
            "setup_seconds": round(setup_seconds, 3),
            "audit_seconds_best_of_3": round(audit_seconds, 3),
            "audit_with_json_shape_seconds_best_of_3": round(shaped_seconds, 3),
            "goal_seconds": GOAL_SECONDS,
            "audit_vs_goal": round(shaped_seconds / GOAL_SECONDS, 3),
            "resources_reported": len(shape["Resources"]),
            "out_of_policy": len(report.violations),
        }
