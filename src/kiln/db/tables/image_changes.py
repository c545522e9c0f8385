"""The AMIs' change log: for each AMI (by id) the sequence number of the last commit that changed what
DescribeImages shows of it — its row, tags, launch permissions, watermarks or scan results — so a reader
holding the images in memory re-reads only those changed since it last looked (``kiln.store.image_changes``).

SQLite triggers (migration ``0022_image_changes``) keep it, whoever writes: kiln's code, another process,
or plain SQL. ``image_id`` ``*`` stands for every AMI (an account's image owner alias changed).
"""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base


class StoreImageChange(Base):
    __tablename__ = "store_image_changes"

    image_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, index=True)
