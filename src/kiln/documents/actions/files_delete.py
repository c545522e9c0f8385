"""DeleteFile and DeleteFolder (AWSTOE file-system actions).

Deleting what is already absent succeeds (AWS lists only permission and operation errors). A link
is removed itself, never what it points to.
"""

from __future__ import annotations

import os
import shutil
import stat
from typing import Annotated

from pydantic import Field, RootModel

from kiln.documents.actions.base import Action, ActionFailed, ActionResult, StepContext, register
from kiln.documents.actions.files_support import PathInput, absolute, entry, expand, has_wildcard, os_failure


class DeleteFileItem(PathInput):
    pass


class DeleteFolderItem(PathInput):
    force: bool = False


class DeleteFileInputs(RootModel[Annotated[list[DeleteFileItem], Field(min_length=1)]]):
    pass


class DeleteFolderInputs(RootModel[Annotated[list[DeleteFolderItem], Field(min_length=1)]]):
    pass


@register
class DeleteFile(Action):
    name = "DeleteFile"
    inputs = DeleteFileInputs

    def execute(self, inputs: DeleteFileInputs, context: StepContext) -> ActionResult:
        for item in inputs.root:
            wildcard = has_wildcard(item.path)
            for where, host in expand(context, item.path):
                try:
                    mode = os.lstat(host).st_mode
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(mode):
                    if wildcard:  # a pattern deletes the files it matches; folders stay
                        continue
                    raise ActionFailed(f"cannot delete '{where}': it is a folder (use DeleteFolder)")
                try:
                    os.unlink(host)
                except OSError as error:
                    raise os_failure(error, where) from None
        return ActionResult()


@register
class DeleteFolder(Action):
    name = "DeleteFolder"
    inputs = DeleteFolderInputs

    def execute(self, inputs: DeleteFolderInputs, context: StepContext) -> ActionResult:
        for item in inputs.root:
            where = absolute(context, item.path)
            host = entry(context, where)
            try:
                mode = os.lstat(host).st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(mode):
                raise ActionFailed(f"cannot delete folder '{where}': it is not a folder")
            if where == "/":
                raise ActionFailed("refusing to delete the root folder '/'")
            try:
                with os.scandir(host) as entries:
                    empty = next(entries, None) is None
                if not empty:
                    if not item.force:
                        raise ActionFailed(f"cannot delete folder '{where}': it is not empty and force is false")
                    shutil.rmtree(host)
                else:
                    os.rmdir(host)
            except OSError as error:
                raise os_failure(error, where) from None
        return ActionResult()
