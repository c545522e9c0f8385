"""What every kiln process does once, when it first opens a database: recover and seed.

Seeding adds the default account and region and the managed components the database lacks; recovery
cleans up what a killed process left behind (dead instances and their mounts, interrupted builds,
layer pins of terminated instances).
Entry points (the CLI, the scheduler's workers, tests) call :func:`install`; the database layer runs
the installed step when it opens a database, so nothing below ``services`` names anything above it.
"""

from __future__ import annotations

import sys


def startup() -> None:
    """Run every start-up step; a failing step is reported and never stops the command."""
    from kiln.db.engine import session
    from kiln.runtime.recovery import recover
    from kiln.services.accounts.accounts import ensure_default_account
    from kiln.services.accounts.regions import ensure_default_region
    from kiln.services.builds.recovery import recover_interrupted_builds
    from kiln.services.components.managed import ensure_managed_components
    from kiln.services.ec2.instances import release_terminated_pins
    from kiln.services.workflows.managed import ensure_managed_workflows

    def seed_managed_components() -> None:
        with session() as db:
            ensure_managed_components(db)

    def seed_managed_workflows() -> None:
        with session() as db:
            ensure_managed_workflows(db)

    steps = (ensure_default_account, ensure_default_region, recover, recover_interrupted_builds,
             release_terminated_pins, seed_managed_components, seed_managed_workflows)
    for step in steps:
        try:
            step()
        except Exception as error:
            print(f"kiln: warning: start-up step {step.__name__} failed: {error}", file=sys.stderr)


def install() -> None:
    """Have :func:`startup` run whenever this process first opens a database."""
    from kiln.db.open_hooks import on_first_open

    on_first_open(startup)
