"""Which AMIs changed since a reader last looked: the change log SQLite triggers keep
(``kiln.db.tables.image_changes``), so images held in memory are read again one by one, not all of them
after every commit to the database.

A reader notes :func:`last_change` in the transaction it reads images in; later, :func:`changed_since`
(in another transaction) names every AMI a commit touched in between, whichever connection or process
made it. Where the triggers are not all there (not SQLite, or a migration rebuilt a table and dropped
them), :func:`tracked` is False and a reader must read everything.
"""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from kiln.db.tables.image_changes import StoreImageChange

EVERY_IMAGE = "*"  # logged when what every AMI shows changed (an account's image owner alias)
TRIGGERS = 23  # migration 0022_image_changes: 5 tables x 4 events, and 3 on accounts
_COUNT = text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'kiln_image_change_%'")


def tracked(db: Session) -> bool:
    """Whether every change to an AMI is logged in this database."""
    if db.get_bind().dialect.name != "sqlite":
        return False
    return db.execute(_COUNT).scalar_one() == TRIGGERS


def last_change(db: Session) -> int:
    """The sequence number of the latest logged change (0: none yet)."""
    return db.execute(select(func.max(StoreImageChange.seq))).scalar_one() or 0


def changed_since(db: Session, seq: int) -> set[str]:
    """The AMIs (ids, or :data:`EVERY_IMAGE`) changed after change ``seq``."""
    return set(db.execute(select(StoreImageChange.image_id).where(StoreImageChange.seq > seq)).scalars())
