"""The advisory data's generation (``vulndb_generation``): what a cached advisory index is valid for."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.db.tables.vulndb_state import GENERATION_ROW, VulnGenerationRow


def _row(db: Session) -> VulnGenerationRow:
    row = db.get(VulnGenerationRow, GENERATION_ROW)
    if row is None:  # a database its migration did not seed (made from the metadata)
        row = VulnGenerationRow(id=GENERATION_ROW, token=uuid.uuid4().hex, generation=0)
        db.add(row)
        db.flush()
    return row


def bump(db: Session) -> int:
    """Count one change of the advisory data, in the caller's transaction (it commits with the change)."""
    row = _row(db)
    row.generation += 1
    return row.generation


def current(db: Session) -> tuple[str, int]:
    """(this database's token, its generation), read without writing."""
    found = db.execute(select(VulnGenerationRow.token, VulnGenerationRow.generation)
                       .where(VulnGenerationRow.id == GENERATION_ROW)).first()
    return (found[0], found[1]) if found is not None else ("", 0)
