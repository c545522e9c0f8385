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
_TRIGGERS_SQL = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'kiln_image_change_%'"
_COUNT = text(_TRIGGERS_SQL)
# In one statement (one look, see ``changes_at_once``): the triggers there, the last change, and the AMIs
# changed after a given one, separated by the unit separator.
CHANGES_AT_ONCE = (f"SELECT ({_TRIGGERS_SQL}), (SELECT coalesce(max(seq), 0) FROM store_image_changes), "
                   "(SELECT group_concat(image_id, char(31)) FROM store_image_changes WHERE seq > ?)")


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


def changes_at_once(found: list[tuple[object, ...]]) -> tuple[int, set[str]] | None:
    """(:func:`last_change`, :func:`changed_since`) from the answer of :data:`CHANGES_AT_ONCE`, or None
    when the triggers are not all there."""
    [(triggers, latest, changed)] = found
    if triggers != TRIGGERS:
        return None
    return int(latest or 0), set(str(changed).split("\x1f")) if changed else set()
