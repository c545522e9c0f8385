"""Builds whose process died (kill -9, power loss) are marked FAILED and their leftovers removed.

Runs once per process when the database is first opened (``kiln.services.startup``):
an image in a building state whose owner process is gone — or whose pid now belongs to another
process — is interrupted. Its instances are terminated, unless the infrastructure configuration asks
to keep the build instance on failure; the copies and exports a distribution in progress made are
removed, and its intermediate AMI is deregistered with its snapshots.
"""

from __future__ import annotations

from sqlalchemy import select

from kiln.db.engine import session
from kiln.db.tables.images import ImageBuild
from kiln.runtime import procs
from kiln.services.builds import records as images

REASON = "interrupted: the kiln process running this build stopped before it finished"


def recover_interrupted_builds() -> list[str]:
    with session() as db:
        rows = list(db.scalars(select(ImageBuild).where(ImageBuild.status.in_(images.ACTIVE))))
        interrupted = [row for row in rows if not procs.is_alive(row.owner_pid, row.owner_start)]
        for row in interrupted:
            db.expunge(row)
    for row in interrupted:
        _clean(row)
    _terminate_strays()
    return [row.arn for row in interrupted]


def _terminate_strays() -> None:
    """Build and test instances whose build is over (a kill between launching an instance and
    recording it leaves one nobody knows of) go, except a failed build's kept build instance."""
    from kiln.runtime.instances import list_instances
    from kiln.services.builds.steps import terminate

    states = ("pending", "running", "stopping", "stopped")
    live = [i for i in list_instances(states=states) if "kiln:ImageArn" in i.tags]
    if not live:
        return
    with session() as db:
        builds = {arn: db.get(ImageBuild, arn) for arn in {i.tags["kiln:ImageArn"] for i in live}}
        kept = {
            row.build_instance_id for row in builds.values()
            if row is not None and row.status == "FAILED" and _keep_build_instance(row)
        }
        active = {arn for arn, row in builds.items() if row is not None and row.status in images.ACTIVE}
    for instance in live:
        if instance.tags["kiln:ImageArn"] not in active and instance.id not in kept:
            terminate(instance.id)


def _keep_build_instance(row: ImageBuild) -> bool:
    from kiln.errors import KilnError
    from kiln.services.builds.plan import keeps_instance_on_failure
    from kiln.services.configurations.infrastructure import find_infrastructure_configuration

    try:
        with session() as db:
            return keeps_instance_on_failure(find_infrastructure_configuration(db, row.infrastructure_arn).body)
    except KilnError:  # the configuration is gone or unreadable: nothing asks to keep it
        return False


def _clean(row: ImageBuild) -> None:
    """Everything the build made goes: instances, the AMI copies and exports its distribution made
    (recorded in ``distribution_outputs``, or found by the build's tag), the intermediate AMI."""
    from kiln.services.builds.workflow import abandon, region_of

    abandon(
        row.arn, "FAILED", REASON,
        build_instance=row.build_instance_id, test_instance=row.test_instance_id, ami=row.intermediate_ami_id,
        keep_build_instance=_keep_build_instance(row), region=region_of(row.arn),
    )
