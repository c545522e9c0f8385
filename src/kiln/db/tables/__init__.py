"""Importing this package registers every table on ``Base.metadata``."""

from kiln.db.tables import (
    accounts,  # noqa: F401
    approvals,  # noqa: F401
    autoscaling,  # noqa: F401
    compliance,  # noqa: F401
    containers,  # noqa: F401
    distribution,  # noqa: F401
    fleet,  # noqa: F401
    image_changes,  # noqa: F401
    images,  # noqa: F401
    instances,  # noqa: F401
    key_pairs,  # noqa: F401
    leases,  # noqa: F401
    lifecycle,  # noqa: F401
    parameters,  # noqa: F401
    pipelines,  # noqa: F401
    publishing,  # noqa: F401
    requests,  # noqa: F401
    resources,  # noqa: F401
    scans,  # noqa: F401
    schedule,  # noqa: F401
    store,  # noqa: F401
    vulndb,  # noqa: F401
    vulndb_state,  # noqa: F401
    workflows,  # noqa: F401
)
