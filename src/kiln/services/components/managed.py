"""Amazon-style managed components shipped with kiln, seeded into the database on first use.

They live in ``kiln/services/components/managed_documents/<name>.yaml``; each is owned by ``Amazon`` under the account
``aws``: ``arn:aws:imagebuilder:local:aws:component/<name>/<version>/1``. Seeding is idempotent; a
kiln release that changes a document must bump its version here (versions are immutable).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.home import DEFAULT_REGION
from kiln.model.arn import MANAGED_ACCOUNT

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DOCUMENTS = Path(__file__).resolve().parent / "managed_documents"


@dataclass(frozen=True)
class ManagedComponent:
    name: str
    version: str
    description: str
    supported_os_versions: tuple[str, ...] = ()


MANAGED_COMPONENTS: tuple[ManagedComponent, ...] = (
    ManagedComponent("update-linux", "1.0.0", "Updates Linux with the latest packages (apt-get or yum)."),
    ManagedComponent("reboot-linux", "1.0.0", "Reboots the instance."),
    ManagedComponent("simple-boot-test-linux", "1.0.0", "Tests that the image boots and survives a reboot."),
    ManagedComponent("hello-world-linux", "1.0.0", "Prints Hello World in every phase."),
    ManagedComponent(
        "kiln-hardening-linux",
        "1.0.0",
        "Hardening baseline: sshd, password ageing, unused services masked; checked in validate/test.",
    ),
)


def managed_document(name: str) -> str:
    return (DOCUMENTS / f"{name}.yaml").read_text()


def ensure_managed_components(db: Session, region: str = DEFAULT_REGION) -> int:
    """Insert the managed components the database lacks; returns how many were added."""
    from sqlalchemy import select

    from kiln.db.tables.resources import ComponentRow
    from kiln.model.component import CreateComponentRequest
    from kiln.services.components.resource import put_component

    present = set(db.scalars(select(ComponentRow.arn).where(ComponentRow.account == MANAGED_ACCOUNT)))
    added = 0
    for managed in MANAGED_COMPONENTS:
        arn = f"arn:aws:imagebuilder:{region}:{MANAGED_ACCOUNT}:component/{managed.name}/{managed.version}/1"
        if arn in present:
            continue
        request = CreateComponentRequest(
            name=managed.name,
            semanticVersion=managed.version,
            description=managed.description,
            platform="Linux",
            data=managed_document(managed.name),
            supportedOsVersions=list(managed.supported_os_versions) or None,
        )
        put_component(
            db, request, account=MANAGED_ACCOUNT, region=region, where=f"managed component {managed.name}"
        )
        added += 1
    return added
