"""ReadFile, ListFiles and SetFileEncoding (AWSTOE file-system actions)."""

from __future__ import annotations

import fnmatch
import os
import posixpath
from typing import Annotated, ClassVar

from pydantic import Field, RootModel

from kiln.documents.actions.base import Action, ActionFailed, ActionResult, StepContext, register
from kiln.documents.actions.files_support import (
    EncodingInput,
    PathInput,
    absolute,
    decode,
    encode,
    os_failure,
    resolved,
    write_file,
)


class ReadFileItem(PathInput, EncodingInput):
    printFileContent: bool = False


class ListFilesItem(PathInput):
    fileNamePattern: str | None = None
    recursive: bool = False


class SetFileEncodingItem(PathInput, EncodingInput):
    pass


class ReadFileInputs(RootModel[Annotated[list[ReadFileItem], Field(min_length=1)]]):
    """Usually one file; several are read in order and their texts joined with newlines."""


class ListFilesInputs(RootModel[Annotated[list[ListFilesItem], Field(min_length=1)]]):
    pass


class SetFileEncodingInputs(RootModel[Annotated[list[SetFileEncodingItem], Field(min_length=1)]]):
    pass


def read_bytes(context: StepContext, path: str, verb: str) -> bytes:
    where = absolute(context, path)
    host = resolved(context, path)
    if host.is_dir():
        raise ActionFailed(f"cannot {verb} '{where}': it is a folder")
    try:
        return host.read_bytes()
    except FileNotFoundError:
        raise ActionFailed(f"cannot {verb} '{where}': the file does not exist") from None
    except OSError as error:
        raise os_failure(error, where) from None


@register
class ReadFile(Action):
    name = "ReadFile"
    inputs = ReadFileInputs
    outputs: ClassVar[tuple[str, ...]] = ("content",)

    def execute(self, inputs: ReadFileInputs, context: StepContext) -> ActionResult:
        texts = []
        for item in inputs.root:
            where = absolute(context, item.path)
            content = decode(read_bytes(context, item.path, "read"), item.encoding, where)
            if item.printFileContent:
                for line in content.splitlines():
                    context.console(line)
            texts.append(content)
        content = "\n".join(texts)
        return ActionResult(outputs={"content": content})


@register
class ListFiles(Action):
    name = "ListFiles"
    inputs = ListFilesInputs
    outputs: ClassVar[tuple[str, ...]] = ("files",)

    def execute(self, inputs: ListFilesInputs, context: StepContext) -> ActionResult:
        found: list[str] = []
        for item in inputs.root:
            folder = absolute(context, item.path)
            host = resolved(context, item.path)
            if not host.is_dir():
                problem = "is not a folder" if host.exists() else "does not exist"
                raise ActionFailed(f"cannot list '{folder}': it {problem}")
            try:
                found.extend(_walk(host, folder, item))
            except OSError as error:
                raise os_failure(error, folder) from None
        return ActionResult(outputs={"files": ",".join(found)})


def _walk(host: os.PathLike[str], folder: str, item: ListFilesItem) -> list[str]:
    """Files (not folders) under ``host``, as target paths; links are listed, never followed."""
    result: list[str] = []

    def fail(error: OSError) -> None:
        raise error

    for current, dirs, files in os.walk(host, onerror=fail):
        relative = os.path.relpath(current, host)
        base = folder if relative == "." else posixpath.join(folder, relative)
        dirs.sort()
        # os.walk lists links to folders among dirs; they are entries of this folder, not subfolders
        links = [d for d in dirs if os.path.islink(os.path.join(current, d))]
        for name in sorted(files + links):
            if item.fileNamePattern is None or fnmatch.fnmatchcase(name, item.fileNamePattern):
                result.append(posixpath.join(base, name))
        if not item.recursive:
            break
    return result


@register
class SetFileEncoding(Action):
    name = "SetFileEncoding"
    inputs = SetFileEncodingInputs

    def execute(self, inputs: SetFileEncodingInputs, context: StepContext) -> ActionResult:
        for item in inputs.root:
            where = absolute(context, item.path)
            text = decode(read_bytes(context, item.path, "convert"), "utf8", where)
            write_file(resolved(context, item.path), encode(text, item.encoding), where)
        return ActionResult()
