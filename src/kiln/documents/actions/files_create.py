"""CreateFile, AppendFile, CreateFolder and CreateSymlink (AWSTOE file-system actions)."""

from __future__ import annotations

import os
import posixpath
import stat
from typing import Annotated, ClassVar

from pydantic import Field, RootModel

from kiln.documents.actions.base import POSIX, WINDOWS, Action, ActionFailed, ActionResult, StepContext, register
from kiln.documents.actions.files_support import (
    EncodingInput,
    ModeInput,
    PathInput,
    absolute,
    encode,
    entry,
    exists,
    make_parents,
    os_failure,
    owner_ids,
    parse_mode,
    resolved,
    write_file,
)


class OwnedInput(ModeInput):
    owner: str | None = None
    group: str | None = None
    overwrite: bool = True


class CreateFileItem(PathInput, EncodingInput, OwnedInput):
    content: str | None = None


class CreateFolderItem(PathInput, OwnedInput):
    pass


class AppendFileItem(PathInput, EncodingInput):
    content: str = ""


class SymlinkItem(PathInput):
    target: str = Field(min_length=1)
    force: bool = False


class CreateFileInputs(RootModel[Annotated[list[CreateFileItem], Field(min_length=1)]]):
    pass


class CreateFolderInputs(RootModel[Annotated[list[CreateFolderItem], Field(min_length=1)]]):
    pass


class AppendFileInputs(RootModel[Annotated[list[AppendFileItem], Field(min_length=1)]]):
    pass


class SymlinkInputs(RootModel[Annotated[list[SymlinkItem], Field(min_length=1)]]):
    pass


def apply_owner_and_mode(context: StepContext, host: os.PathLike[str], item: OwnedInput, where: str) -> None:
    """Set the requested owner/group (default group: unchanged) and permissions on a created entry."""
    uid, gid = owner_ids(context, item.owner, item.group, default_group_of_owner=False)
    try:
        if uid != -1 or gid != -1:
            os.chown(host, uid, gid, follow_symlinks=False)
        if item.permissions is not None:
            os.chmod(host, parse_mode(item.permissions))
    except OSError as error:
        raise os_failure(error, where) from None


@register
class CreateFile(Action):
    name = "CreateFile"
    unsupported_inputs: ClassVar[dict[str, tuple[str, ...]]] = {WINDOWS: ("owner", "group", "permissions")}
    inputs = CreateFileInputs

    def execute(self, inputs: CreateFileInputs, context: StepContext) -> ActionResult:
        for item in inputs.root:
            where = absolute(context, item.path)
            host = resolved(context, item.path)
            if host.is_dir():
                raise ActionFailed(f"cannot create file '{where}': a folder with that name exists")
            if exists(host) and not item.overwrite:
                raise ActionFailed(f"cannot create file '{where}': it exists and overwrite is false")
            data = encode(item.content or "", item.encoding)
            make_parents(host, where)
            write_file(host, data, where)
            apply_owner_and_mode(context, host, item, where)
        return ActionResult()


@register
class AppendFile(Action):
    name = "AppendFile"
    inputs = AppendFileInputs

    def execute(self, inputs: AppendFileInputs, context: StepContext) -> ActionResult:
        for item in inputs.root:
            where = absolute(context, item.path)
            host = resolved(context, item.path)
            if not host.is_file():
                problem = "is a folder" if host.is_dir() else "does not exist"
                raise ActionFailed(f"cannot append to '{where}': it {problem}")
            write_file(host, encode(item.content, item.encoding), where, append=True)
        return ActionResult()


@register
class CreateFolder(Action):
    name = "CreateFolder"
    unsupported_inputs: ClassVar[dict[str, tuple[str, ...]]] = {WINDOWS: ("owner", "group", "permissions")}
    inputs = CreateFolderInputs

    def execute(self, inputs: CreateFolderInputs, context: StepContext) -> ActionResult:
        for item in inputs.root:
            where = absolute(context, item.path)
            host = resolved(context, item.path)
            if exists(host) and not host.is_dir():
                raise ActionFailed(f"cannot create folder '{where}': a file with that name exists")
            if host.is_dir() and not item.overwrite:
                raise ActionFailed(f"cannot create folder '{where}': it exists and overwrite is false")
            try:
                host.mkdir(mode=0o777, parents=True, exist_ok=True)
            except FileExistsError:
                raise ActionFailed(f"cannot create folder '{where}': a file is in the way") from None
            except OSError as error:
                raise os_failure(error, where) from None
            apply_owner_and_mode(context, host, item, where)
        return ActionResult()


@register
class CreateSymlink(Action):
    name = "CreateSymlink"
    platforms = POSIX
    inputs = SymlinkInputs

    def execute(self, inputs: SymlinkInputs, context: StepContext) -> ActionResult:
        for item in inputs.root:
            where = absolute(context, item.path)
            link = entry(context, where)
            # a relative target is read from the link's folder, as the link itself will read it
            target = item.target if item.target.startswith("/") else posixpath.join(
                posixpath.dirname(where), item.target)
            if not exists(resolved(context, target)):
                raise ActionFailed(f"cannot link '{where}' to '{item.target}': the target does not exist")
            if exists(link):
                if not stat.S_ISLNK(os.lstat(link).st_mode):
                    raise ActionFailed(f"cannot create link '{where}': a file that is not a link exists there")
                if not item.force:
                    raise ActionFailed(f"cannot create link '{where}': a link exists there and force is false")
            make_parents(link, where)
            try:
                if exists(link):
                    link.unlink()
                os.symlink(item.target, link)
            except OSError as error:
                raise os_failure(error, where) from None
        return ActionResult()
