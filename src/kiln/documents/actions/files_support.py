"""Shared pieces of the AWSTOE file-system actions: paths through the executor, encodings, modes.

Every file action reaches the target only through ``context.executor.host_path``. Two views of a
target path exist: :func:`resolved` follows links (inside an instance root, never out of it), and
:func:`entry` resolves only the parent folder, so the last component can be a link acted on itself
(deleted, moved, replaced).
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from kiln.documents.actions.base import ActionFailed, Inputs, StepContext
from kiln.documents.expressions import has_expression

# AWSTOE's accepted encoding names (case-insensitive); utf-16 and utf-32 default to little-endian.
ENCODINGS = {
    "utf8": "utf-8", "utf-8": "utf-8",
    "utf16": "utf-16-le", "utf-16": "utf-16-le", "utf16-le": "utf-16-le", "utf-16-le": "utf-16-le",
    "utf16-be": "utf-16-be", "utf-16-be": "utf-16-be",
    "utf32": "utf-32-le", "utf-32": "utf-32-le", "utf32-le": "utf-32-le", "utf-32-le": "utf-32-le",
    "utf32-be": "utf-32-be", "utf-32-be": "utf-32-be",
}
BOMS = {
    "utf-8": b"\xef\xbb\xbf", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff",
    "utf-32-le": b"\xff\xfe\x00\x00", "utf-32-be": b"\x00\x00\xfe\xff",
}


class PathInput(Inputs):
    path: str = Field(min_length=1)


class EncodingInput(Inputs):
    encoding: str = "utf8"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if not has_expression(value) and value.lower() not in ENCODINGS:
            raise ValueError(f"unsupported encoding '{value}'; use one of {', '.join(sorted(set(ENCODINGS)))}")
        return value


class ModeInput(Inputs):
    """``permissions``: AWS asks for a string ("0755", "755"); an unquoted YAML number is accepted too."""

    permissions: str | int | None = None

    @field_validator("permissions")
    @classmethod
    def _valid_mode(cls, value: str | int | None) -> str | int | None:
        if value is not None and not (isinstance(value, str) and has_expression(value)):
            parse_mode(value)
        return value


def codec(name: str) -> str:
    return ENCODINGS[name.lower()]


def encode(text: str, encoding: str) -> bytes:
    try:
        return text.encode(codec(encoding))
    except UnicodeEncodeError as error:
        raise ActionFailed(f"content cannot be encoded as {encoding}: {error.reason}") from None


def decode(data: bytes, encoding: str, where: str) -> str:
    name = codec(encoding)
    bom = BOMS[name]
    if data.startswith(bom):
        data = data[len(bom):]
    try:
        return data.decode(name)
    except UnicodeDecodeError as error:
        raise ActionFailed(f"{where} is not valid {encoding} text: {error.reason} at byte {error.start}") from None


def parse_mode(value: str | int) -> int:
    """A permission string read as octal ("0755", "755", "4755").

    YAML reads an unquoted ``0755`` as the octal number 493 and ``755`` as decimal 755. Numbers below
    0o1000, or with a digit 8 or 9, can only have come from an octal literal and are taken as the
    mode; other numbers are read digit by digit as octal.
    """
    if isinstance(value, bool):
        raise ValueError("permissions must be an octal string such as '0755'")
    if isinstance(value, int):
        digits = str(value)
        octal_literal = value < 0o1000 or any(d in "89" for d in digits)
        mode = value if octal_literal else int(digits, 8)
    else:
        text = value.strip()
        if not text or any(c not in "01234567" for c in text):
            raise ValueError(f"permissions '{value}' is not an octal mode such as '0755'")
        mode = int(text, 8)
    if mode > 0o7777:
        raise ValueError(f"permissions '{value}' is out of range (at most 7777)")
    return mode


def absolute(context: StepContext, path: str) -> str:
    """The target-side absolute path; relative paths are taken from the run's working folder."""
    if path.startswith("/"):
        return posixpath.normpath(path) if path != "/" else "/"
    base = context.extra.get("cwd")
    if not base:
        base = os.getcwd() if context.executor.host_path("/") == Path("/") else "/"
    return posixpath.normpath(posixpath.join(base, path))


def resolved(context: StepContext, path: str) -> Path:
    """Host path of ``path`` with every link followed (inside the target)."""
    return context.executor.host_path(absolute(context, path))


def entry(context: StepContext, path: str) -> Path:
    """Host path of ``path`` itself: its folder resolved, its last component not followed."""
    target = absolute(context, path)
    if target == "/":
        return context.executor.host_path("/")
    folder, name = posixpath.split(target)
    return context.executor.host_path(folder) / name


def has_wildcard(path: str) -> bool:
    return "*" in path.rstrip("/").rsplit("/", 1)[-1]


def expand(context: StepContext, path: str) -> list[tuple[str, Path]]:
    """A path whose last component may hold ``*``: the matching (target path, host entry) pairs."""
    target = absolute(context, path.rstrip("/") or "/")
    folder, pattern = posixpath.split(target)
    if "*" in folder:
        raise ActionFailed(f"'{path}': a wildcard is accepted only after the last path separator")
    if not has_wildcard(target):
        return [(target, entry(context, target))]
    host_folder = context.executor.host_path(folder)
    try:
        names = sorted(os.listdir(host_folder))
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise ActionFailed(f"'{folder}' is not a folder") from None
    return [(posixpath.join(folder, n), host_folder / n) for n in names if fnmatch.fnmatchcase(n, pattern)]


def exists(path: Path) -> bool:
    return os.path.lexists(path)


def make_parents(path: Path, where: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ActionFailed(f"cannot create the folders of '{where}': a file is in the way") from None


def write_file(host: Path, data: bytes, where: str, *, append: bool = False) -> None:
    """Write (or append) bytes at a resolved host path; a link there now is refused, not followed."""
    flags = os.O_WRONLY | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_CREAT | os.O_TRUNC)
    try:
        descriptor = os.open(host, flags, 0o666)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
    except OSError as error:
        raise os_failure(error, where) from None


def os_failure(error: OSError, where: str) -> ActionFailed:
    return ActionFailed(f"{where}: {error.strerror or error}")


def owner_ids(context: StepContext, owner: str | None, group: str | None,
              default_group_of_owner: bool) -> tuple[int, int]:
    """(uid, gid) for chown; -1 leaves one unchanged. Unknown names fail the step."""
    try:
        uid = context.executor.user_id(owner) if owner else -1
        gid = context.executor.group_id(group) if group else -1
    except LookupError as error:
        raise ActionFailed(str(error)) from None
    if gid == -1 and owner and default_group_of_owner:
        gid = primary_group(context, uid)
    return uid, gid


def primary_group(context: StepContext, uid: int) -> int:
    """The primary group of ``uid`` in the target's /etc/passwd, or -1 when it has no entry."""
    try:
        lines = context.executor.host_path("/etc/passwd").read_text(errors="replace").splitlines()
    except OSError:
        return -1
    for line in lines:
        fields = line.split(":")
        if len(fields) >= 4 and fields[2] == str(uid) and fields[3].isdigit():
            return int(fields[3])
    return -1


def as_list(inputs: Any) -> list[Any]:
    return list(inputs.root)
