"""Advisory data (OSV records by source) and what kiln has seen in the distributions' security suites."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKeyConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime


class VulnSourceRow(Base):
    """One advisory source: where its data comes from and what the last import and fetch found."""

    __tablename__ = "vulndb_sources"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    location: Mapped[str] = mapped_column(String(2048))  # the path or URL last imported
    record_count: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    etag: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(128), nullable=True)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # last conditional fetch


class VulnRecordRow(Base):
    """One OSV record as imported (the whole document; matching reads it back)."""

    __tablename__ = "vulndb_records"

    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    modified: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of the canonical JSON: unchanged records are known
    record: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        ForeignKeyConstraint(["source"], ["vulndb_sources.name"], ondelete="CASCADE"),
    )


class VulnPackageRow(Base):
    """Which (ecosystem, package) a record names: what matching looks records up by."""

    __tablename__ = "vulndb_packages"

    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    ecosystem: Mapped[str] = mapped_column(String(256), primary_key=True)
    package: Mapped[str] = mapped_column(String(512), primary_key=True)

    __table_args__ = (
        ForeignKeyConstraint(["source", "record_id"], ["vulndb_records.source", "vulndb_records.id"],
                             ondelete="CASCADE"),
        Index("ix_vulndb_packages_ecosystem", "ecosystem", "package"),
    )


class SuiteVersionRow(Base):
    """A package version kiln saw in a security suite's index, and when it first saw it."""

    __tablename__ = "security_suite_versions"

    suite: Mapped[str] = mapped_column(String(512), primary_key=True)  # e.g. debian-security bookworm-security
    package: Mapped[str] = mapped_column(String(512), primary_key=True)
    version: Mapped[str] = mapped_column(String(256), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
