"""Every AWSTOE action kiln implements, by name: the action modules, listed once."""

from __future__ import annotations

from kiln.documents.actions import (  # noqa: F401  (each module's @register fills REGISTRY)
    assert_action,
    execute,
    execute_document,
    files_copy_move,
    files_create,
    files_delete,
    files_owner_perms,
    files_read_list,
    reboot,
    s3,
    unavailable,
    update_os,
    web_download,
    windows,
)
from kiln.documents.actions.base import REGISTRY, Action


def lookup(name: str) -> type[Action] | None:
    return REGISTRY.get(name)
