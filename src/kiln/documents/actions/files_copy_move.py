"""CopyFile, CopyFolder, MoveFile and MoveFolder (AWSTOE file-system actions).

A ``*`` in the source's last component selects every match; the destination must then end with
``/``. A destination ending with ``/`` is a folder that receives the source under its own name;
otherwise the destination is the new name. Missing destination folders are created. An existing
destination is replaced unless ``overwrite`` is false (then the step fails). Links inside copied
folders are copied as links, never followed.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
from pathlib import Path
from typing import Annotated

from pydantic import Field, RootModel

from kiln.documents.actions.base import Action, ActionFailed, ActionResult, Inputs, StepContext, register
from kiln.documents.actions.files_support import (
    absolute,
    entry,
    exists,
    expand,
    has_wildcard,
    make_parents,
    os_failure,
    resolved,
)


class TransferItem(Inputs):
    source: str = Field(min_length=1)
    destination: str = Field(min_length=1)
    overwrite: bool = True


class TransferInputs(RootModel[Annotated[list[TransferItem], Field(min_length=1)]]):
    pass


def plan(context: StepContext, item: TransferItem, folders: bool) -> list[tuple[str, Path, str, Path]]:
    """(source, source host entry, destination, destination host entry) for every selected source."""
    kind = "folder" if folders else "file"
    wildcard = has_wildcard(item.source)
    into = item.destination.endswith("/")
    if wildcard and not into:
        raise ActionFailed(f"destination '{item.destination}' must end with '/' when the source has a wildcard")
    pairs = []
    for source, host in expand(context, item.source):
        if not exists(host):
            continue
        is_folder = resolved(context, source).is_dir()
        if is_folder != folders:
            if wildcard:
                continue
            raise ActionFailed(f"source '{source}' is not a {kind}")
        target = posixpath.join(absolute(context, item.destination), posixpath.basename(source)) if into \
            else absolute(context, item.destination)
        pairs.append((source, host, target, entry(context, target)))
    if not pairs:
        raise ActionFailed(f"source {kind} '{item.source}' does not exist")
    return pairs


def clear(destination: str, host: Path, overwrite: bool, folders: bool) -> None:
    """Make room at the destination, or fail when overwriting isn't allowed."""
    try:
        mode = os.lstat(host).st_mode
    except FileNotFoundError:
        return
    is_folder = stat.S_ISDIR(mode)
    if not overwrite:
        what = "folder" if is_folder else "file"
        raise ActionFailed(f"destination '{destination}' exists (a {what}) and overwrite is false")
    if is_folder and not folders:
        raise ActionFailed(f"destination '{destination}' is a folder; a file cannot replace it")
    try:
        if is_folder:
            shutil.rmtree(host)
        else:
            os.unlink(host)  # a link is replaced, never written through
    except OSError as error:
        raise os_failure(error, destination) from None


def check_not_inside(source: str, destination: str) -> None:
    if destination == source or destination.startswith(source.rstrip("/") + "/"):
        raise ActionFailed(f"cannot put folder '{source}' inside itself ('{destination}')")


def transfer(context: StepContext, inputs: TransferInputs, folders: bool, move: bool) -> ActionResult:
    for item in inputs.root:
        for source, source_host, target, target_host in plan(context, item, folders):
            if target == source:
                continue
            if folders:
                check_not_inside(source, target)
            clear(target, target_host, item.overwrite, folders)
            make_parents(target_host, target)
            try:
                if move:
                    shutil.move(source_host, target_host)
                elif folders:
                    shutil.copytree(resolved(context, source), target_host, symlinks=True)
                else:
                    shutil.copyfile(resolved(context, source), target_host)
                    shutil.copymode(resolved(context, source), target_host)
            except OSError as error:
                raise os_failure(error, f"{source} -> {target}") from None
            except shutil.Error as error:
                raise ActionFailed(f"{source} -> {target}: {error}") from None
    return ActionResult()


@register
class CopyFile(Action):
    name = "CopyFile"
    inputs = TransferInputs

    def execute(self, inputs: TransferInputs, context: StepContext) -> ActionResult:
        return transfer(context, inputs, folders=False, move=False)


@register
class CopyFolder(Action):
    name = "CopyFolder"
    inputs = TransferInputs

    def execute(self, inputs: TransferInputs, context: StepContext) -> ActionResult:
        return transfer(context, inputs, folders=True, move=False)


@register
class MoveFile(Action):
    name = "MoveFile"
    inputs = TransferInputs

    def execute(self, inputs: TransferInputs, context: StepContext) -> ActionResult:
        return transfer(context, inputs, folders=False, move=True)


@register
class MoveFolder(Action):
    name = "MoveFolder"
    inputs = TransferInputs

    def execute(self, inputs: TransferInputs, context: StepContext) -> ActionResult:
        return transfer(context, inputs, folders=True, move=True)
