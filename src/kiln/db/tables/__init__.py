"""Importing this package registers every table on ``Base.metadata``."""

import kiln.db.tables.lifecycle  # noqa: F401
from kiln.db.tables import leases  # noqa: F401
