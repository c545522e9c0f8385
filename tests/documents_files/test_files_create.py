from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from files_toe import Run

Toe = Callable[..., Run]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_create_file_content_encoding_owner_mode_and_chaining(toe: Toe, work: Path) -> None:
    run = toe(
        """
        - name: Make
          action: CreateFile
          inputs:
            - path: '{{ Work }}/deep/new/a.txt'
              content: "line one\\nline two"
            - path: '{{ Work }}/u16.txt'
              content: héllo
              encoding: UTF-16
            - path: '{{ Work }}/u32be.txt'
              content: hi
              encoding: utf-32-BE
            - path: '{{ Work }}/owned.txt'
              owner: nobody
              group: '0'
              permissions: '0640'
            - path: '{{ Work }}/octal.txt'
              permissions: 0755
            - path: '{{ Work }}/digits.txt'
              permissions: 600
        - name: Read
          action: ReadFile
          inputs:
            - path: '{{ Work }}/deep/new/a.txt'
        - name: Copy
          action: CreateFile
          inputs:
            - path: '{{ Work }}/chained.txt'
              content: '{{ build.Read.outputs.content }}!'
        """
    )
    assert run.execution.status == "success", run.execution.to_dict()
    assert (work / "deep/new/a.txt").read_text() == "line one\nline two"
    assert (work / "u16.txt").read_bytes() == "héllo".encode("utf-16-le")
    assert (work / "u32be.txt").read_bytes() == "hi".encode("utf-32-be")
    owned = os.stat(work / "owned.txt")
    assert owned.st_uid == __import__("pwd").getpwnam("nobody").pw_uid and owned.st_gid == 0
    assert mode(work / "owned.txt") == 0o640
    assert mode(work / "octal.txt") == 0o755
    assert mode(work / "digits.txt") == 0o600
    assert (work / "owned.txt").read_bytes() == b""
    assert (work / "chained.txt").read_text() == "line one\nline two!"


def test_create_file_overwrite_and_failures(toe: Toe, work: Path) -> None:
    (work / "keep.txt").write_text("old")
    (work / "trunc.txt").write_text("a long old text")
    (work / "folder").mkdir()
    run = toe(
        """
        - name: Truncate
          action: CreateFile
          inputs:
            - path: '{{ Work }}/trunc.txt'
              content: new
        - name: NoOverwrite
          action: CreateFile
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/keep.txt'
              content: replaced
              overwrite: false
        - name: OnFolder
          action: CreateFile
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/folder'
        - name: UnknownOwner
          action: CreateFile
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/x.txt'
              owner: no-such-user-kiln
        """
    )
    assert (work / "trunc.txt").read_text() == "new"
    assert "overwrite is false" in run.failure("NoOverwrite")
    assert (work / "keep.txt").read_text() == "old"
    assert "folder with that name exists" in run.failure("OnFolder")
    assert "no-such-user-kiln" in run.failure("UnknownOwner")


def test_append_file(toe: Toe, work: Path) -> None:
    (work / "log.txt").write_text("start;")
    (work / "wide.txt").write_bytes("a".encode("utf-16-le"))
    run = toe(
        """
        - name: Append
          action: AppendFile
          inputs:
            - path: '{{ Work }}/log.txt'
              content: more
            - path: '{{ Work }}/log.txt'
            - path: '{{ Work }}/wide.txt'
              content: b
              encoding: utf16
        - name: Missing
          action: AppendFile
          inputs:
            - path: '{{ Work }}/absent.txt'
              content: x
        """
    )
    assert (work / "log.txt").read_text() == "start;more"
    assert (work / "wide.txt").read_bytes().decode("utf-16-le") == "ab"
    assert "does not exist" in run.failure("Missing")
    assert not (work / "absent.txt").exists()


def test_create_folder(toe: Toe, work: Path) -> None:
    (work / "there").mkdir()
    (work / "there/inside.txt").write_text("kept")
    (work / "afile").write_text("x")
    run = toe(
        """
        - name: Make
          action: CreateFolder
          inputs:
            - path: '{{ Work }}/a/b/c/'
            - path: '{{ Work }}/perm'
              owner: nobody
              group: nogroup
              permissions: '750'
            - path: '{{ Work }}/there'
              overwrite: true
        - name: NoOverwrite
          action: CreateFolder
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/there'
              overwrite: false
        - name: FileInWay
          action: CreateFolder
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/afile'
        """
    )
    assert (work / "a/b/c").is_dir()
    assert mode(work / "perm") == 0o750
    assert os.stat(work / "perm").st_gid == __import__("grp").getgrnam("nogroup").gr_gid
    assert (work / "there/inside.txt").read_text() == "kept"
    assert "overwrite is false" in run.failure("NoOverwrite")
    assert "a file with that name exists" in run.failure("FileInWay")


def test_create_symlink(toe: Toe, work: Path) -> None:
    (work / "target.txt").write_text("T")
    (work / "other.txt").write_text("O")
    (work / "plain.txt").write_text("P")
    run = toe(
        """
        - name: Link
          action: CreateSymlink
          inputs:
            - path: '{{ Work }}/links/l.txt'
              target: '{{ Work }}/target.txt'
            - path: '{{ Work }}/rel.txt'
              target: other.txt
        - name: Exists
          action: CreateSymlink
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/links/l.txt'
              target: '{{ Work }}/other.txt'
        - name: Force
          action: CreateSymlink
          inputs:
            - path: '{{ Work }}/links/l.txt'
              target: '{{ Work }}/other.txt'
              force: true
        - name: NotALink
          action: CreateSymlink
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/plain.txt'
              target: '{{ Work }}/other.txt'
              force: true
        - name: NoTarget
          action: CreateSymlink
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/dangling'
              target: '{{ Work }}/nothing-here'
        """
    )
    assert "a link exists there and force is false" in run.failure("Exists")
    assert os.readlink(work / "links/l.txt") == str(work / "other.txt")
    assert os.readlink(work / "rel.txt") == "other.txt" and (work / "rel.txt").read_text() == "O"
    assert "not a link" in run.failure("NotALink") and (work / "plain.txt").read_text() == "P"
    assert "target does not exist" in run.failure("NoTarget")
    assert not os.path.lexists(work / "dangling")


def test_relative_paths_use_the_working_folder(toe: Toe, work: Path) -> None:
    toe(
        """
        - name: Rel
          action: CreateFile
          inputs:
            - path: sub/rel.txt
              content: here
        """,
        cwd=str(work),
    )
    assert (work / "sub/rel.txt").read_text() == "here"


def test_validation_of_file_inputs(problems: Callable[[str], list[str]]) -> None:
    messages = problems(
        """
        - name: BadEncoding
          action: CreateFile
          inputs:
            - path: /tmp/x
              encoding: latin1
        - name: BadMode
          action: CreateFolder
          inputs:
            - path: /tmp/x
              permissions: rwx
        - name: Unknown
          action: CopyFile
          inputs:
            - source: /a
              destination: /b
              recursive: true
        - name: NoPath
          action: DeleteFile
          inputs:
            - {}
        - name: Empty
          action: ListFiles
          inputs: []
        - name: MissingPermissions
          action: SetFilePermissions
          inputs:
            - path: /a
        """
    )
    text = "\n".join(messages)
    assert "unsupported encoding 'latin1'" in text
    assert "permissions 'rwx' is not an octal mode" in text
    assert "CopyFile: unknown input" in text and "recursive" in text
    assert "DeleteFile: missing required input" in text
    assert "SetFilePermissions: missing required input" in text and "permissions" in text
    assert len(messages) == 6, messages
