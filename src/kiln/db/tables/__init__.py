"""Importing this package registers every table on ``Base.metadata``."""

from kiln.db.tables import (
    leases,  # noqa: F401
    schedule,  # noqa: F401
)
