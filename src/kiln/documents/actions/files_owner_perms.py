"""SetFileOwner, SetFolderOwner, SetFilePermissions and SetFolderPermissions (AWSTOE actions).

The named path is followed if it is a link (AWS: the link's source file changes). Inside a folder,
links are never followed: their own owner changes, and their (meaningless) mode is left alone.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from pydantic import Field, RootModel

from kiln.documents.actions.base import POSIX, Action, ActionFailed, ActionResult, StepContext, register
from kiln.documents.actions.files_support import (
    ModeInput,
    PathInput,
    absolute,
    os_failure,
    owner_ids,
    parse_mode,
    resolved,
)


class OwnerItem(PathInput):
    owner: str = Field(min_length=1)
    group: str | None = None


class FolderOwnerItem(OwnerItem):
    recursive: bool = True


class PermissionsItem(PathInput, ModeInput):
    permissions: str | int  # required here


class FolderPermissionsItem(PermissionsItem):
    recursive: bool = True


class OwnerInputs(RootModel[Annotated[list[OwnerItem], Field(min_length=1)]]):
    pass


class FolderOwnerInputs(RootModel[Annotated[list[FolderOwnerItem], Field(min_length=1)]]):
    pass


class PermissionsInputs(RootModel[Annotated[list[PermissionsItem], Field(min_length=1)]]):
    pass


class FolderPermissionsInputs(RootModel[Annotated[list[FolderPermissionsItem], Field(min_length=1)]]):
    pass


def existing(context: StepContext, path: str, folder: bool) -> tuple[str, Path]:
    where = absolute(context, path)
    host = resolved(context, path)
    if not host.exists():
        raise ActionFailed(f"'{where}' does not exist")
    if host.is_dir() != folder:
        wrong = "is a folder (use the Folder action)" if host.is_dir() else "is not a folder"
        raise ActionFailed(f"'{where}' {wrong}")
    return where, host


def below(folder: Path) -> Iterator[Path]:
    """Everything inside ``folder``, links included but not followed."""
    for current, dirs, files in os.walk(folder):
        for name in dirs + files:
            yield Path(current, name)


@register
class SetFileOwner(Action):
    name = "SetFileOwner"
    platforms = POSIX
    inputs = OwnerInputs

    def execute(self, inputs: OwnerInputs, context: StepContext) -> ActionResult:
        for item in inputs.root:
            where, host = existing(context, item.path, folder=False)
            uid, gid = owner_ids(context, item.owner, item.group, default_group_of_owner=True)
            try:
                os.chown(host, uid, gid)
            except OSError as error:
                raise os_failure(error, where) from None
        return ActionResult()


@register
class SetFolderOwner(Action):
    name = "SetFolderOwner"
    platforms = POSIX
    inputs = FolderOwnerInputs

    def execute(self, inputs: FolderOwnerInputs, context: StepContext) -> ActionResult:
        for item in inputs.root:
            where, host = existing(context, item.path, folder=True)
            uid, gid = owner_ids(context, item.owner, item.group, default_group_of_owner=True)
            try:
                os.chown(host, uid, gid)
                if item.recursive:
                    for path in below(host):
                        os.chown(path, uid, gid, follow_symlinks=False)
            except OSError as error:
                raise os_failure(error, where) from None
        return ActionResult()


@register
class SetFilePermissions(Action):
    name = "SetFilePermissions"
    platforms = POSIX
    inputs = PermissionsInputs

    def execute(self, inputs: PermissionsInputs, context: StepContext) -> ActionResult:
        for item in inputs.root:
            where, host = existing(context, item.path, folder=False)
            try:
                os.chmod(host, parse_mode(item.permissions))
            except OSError as error:
                raise os_failure(error, where) from None
        return ActionResult()


@register
class SetFolderPermissions(Action):
    name = "SetFolderPermissions"
    platforms = POSIX
    inputs = FolderPermissionsInputs

    def execute(self, inputs: FolderPermissionsInputs, context: StepContext) -> ActionResult:
        for item in inputs.root:
            where, host = existing(context, item.path, folder=True)
            mode = parse_mode(item.permissions)
            try:
                if item.recursive:
                    for path in below(host):
                        if not stat.S_ISLNK(os.lstat(path).st_mode):
                            os.chmod(path, mode)
                os.chmod(host, mode)  # last, so a mode without x for root's walk still reaches inside
            except OSError as error:
                raise os_failure(error, where) from None
        return ActionResult()
