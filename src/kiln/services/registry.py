"""The one wiring point of kiln's services: every resource family once, and what each plugs in.

- ``APPLY_KINDS``: the ``kind`` of each family that ``kiln apply`` accepts.
- ``scheduler_jobs``: the jobs ``kiln scheduler`` runs (pipeline schedules, daily lifecycle runs, the
  Auto Scaling reconcile pass every minute),
  plus any ``KILN_JOB_SOURCES`` (comma-separated ``module:function``) an operator names.

Start-up (recovery, managed components) is ``kiln.services.startup``; who references whom is
``kiln.services.common.references``. Nothing else registers anything anywhere.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import TYPE_CHECKING

from kiln.services.builds import image_kind
from kiln.services.common.kinds import KindHandler
from kiln.services.compliance import rules as compliance_rules
from kiln.services.components import resource as components
from kiln.services.configurations import distribution, infrastructure
from kiln.services.container_recipes import resource as container_recipes
from kiln.services.lifecycle import policies as lifecycle_policies
from kiln.services.pipelines import resource as pipelines
from kiln.services.recipes import resource as recipes
from kiln.services.workflows import resource as workflows

if TYPE_CHECKING:
    from kiln.schedule.scheduler import Job

log = logging.getLogger("kiln.schedule")

APPLY_KINDS: tuple[KindHandler, ...] = (
    components.APPLY_KIND,
    recipes.APPLY_KIND,
    infrastructure.APPLY_KIND,
    distribution.APPLY_KIND,
    pipelines.APPLY_KIND,
    lifecycle_policies.APPLY_KIND,
    compliance_rules.APPLY_KIND,
    workflows.APPLY_KIND,
    container_recipes.APPLY_KIND,
    image_kind.APPLY_KIND,
)


def scheduler_jobs() -> list[Job]:
    """Every job of every source; a failing source is logged and skipped."""
    from kiln.services.compliance import jobs as compliance_jobs
    from kiln.services.fleet import asg_reconcile
    from kiln.services.lifecycle import jobs as lifecycle_jobs
    from kiln.services.pipelines import jobs as pipeline_jobs
    from kiln.services.publishing import removals as publishing_removals
    from kiln.services.scanning import jobs as scanning_jobs

    sources = [pipeline_jobs.scheduler_jobs, lifecycle_jobs.scheduler_jobs, asg_reconcile.scheduler_jobs,
               compliance_jobs.scheduler_jobs,
               scanning_jobs.scheduler_jobs,
               publishing_removals.scheduler_jobs,
               *_operator_sources()]
    jobs: list[Job] = []
    for source in sources:
        try:
            jobs.extend(source())
        except Exception:
            log.exception("job source %r failed", source)
    return jobs


def _operator_sources() -> list:  # type: ignore[type-arg]
    sources = []
    for entry in filter(None, (s.strip() for s in os.environ.get("KILN_JOB_SOURCES", "").split(","))):
        module, _, name = entry.partition(":")
        if not module or not name:
            raise ValueError(f"KILN_JOB_SOURCES entry {entry!r} is not 'module:function'")
        sources.append(getattr(importlib.import_module(module), name))
    return sources
