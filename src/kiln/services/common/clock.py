"""The one clock ages are judged against (lifecycle, allowed images, compliance), for every front end:
the real time unless ``KILN_CLOCK`` says "as of" (``kiln.db.base.clock_now``)."""

from __future__ import annotations

from kiln.db.base import clock_now as now

__all__ = ["now"]
