"""The advisory data's generation: bumped in the transaction of every import that changes records, so a
process holding an advisory index knows with one small read whether it still describes the data."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base

GENERATION_ROW = 1


class VulnGenerationRow(Base):
    """One row (id 1). ``token`` is made with the database, so a cache never mistakes another database
    (a new one at the same path) for this one."""

    __tablename__ = "vulndb_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
    generation: Mapped[int] = mapped_column(Integer)
