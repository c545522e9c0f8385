"""What an SBOM describes: one AMI, named by its OCI manifest digest and dated by its creation."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kiln.model.packages import InstalledPackage
from kiln.store.package_db import Inventory

TOOL = "kiln"


@dataclass(frozen=True)
class SbomSubject:
    ami_id: str
    name: str
    region: str
    architecture: str
    manifest_digest: str
    created: datetime
    inventory: Inventory

    @property
    def timestamp(self) -> str:
        """The AMI's creation time, to the second, in UTC: SBOMs carry no clock of their own."""
        return self.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def digest_hex(self) -> str:
        return self.manifest_digest.partition(":")[2]


def encode_document(document: dict[str, Any]) -> bytes:
    """An SBOM's bytes: compact JSON in the document's own key order, one trailing newline. Compact
    (no indent) lets json use its C encoder: 10-15 ms less per document, four or more per build."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def source_note(package: InstalledPackage) -> str:
    return f"built from source package {package.source_name} {package.source_version}"


def safe_id(text: str) -> str:
    """``text`` with only the characters SPDX ids and bom-refs may hold."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "x"
