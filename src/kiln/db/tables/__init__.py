"""Importing this package registers every table on ``Base.metadata``."""

from kiln.db.tables import instances, leases  # noqa: F401
