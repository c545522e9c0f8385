from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from files_toe import Run

from kiln.documents.executor import OsInfo, ProcessResult
from kiln.documents.host import HostExecutor
from kiln.paths import resolve_in_root

Toe = Callable[..., Run]
NOBODY = pwd.getpwnam("nobody")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_set_file_owner(toe: Toe, work: Path) -> None:
    (work / "a.txt").write_text("a")
    (work / "b.txt").write_text("b")
    os.symlink(work / "b.txt", work / "b-link")
    run = toe(
        """
        - name: Own
          action: SetFileOwner
          inputs:
            - path: '{{ Work }}/a.txt'
              owner: nobody
            - path: '{{ Work }}/b-link'
              owner: '0'
              group: nogroup
        - name: UnknownUser
          action: SetFileOwner
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/a.txt'
              owner: kiln-no-such-user
        - name: UnknownGroup
          action: SetFileOwner
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/a.txt'
              owner: root
              group: kiln-no-such-group
        - name: Missing
          action: SetFileOwner
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/nope'
              owner: root
        - name: Folder
          action: SetFileOwner
          onFailure: Continue
          inputs:
            - path: '{{ Work }}'
              owner: root
        """
    )
    a = os.stat(work / "a.txt")
    assert (a.st_uid, a.st_gid) == (NOBODY.pw_uid, NOBODY.pw_gid)  # the group defaults to the user's
    assert os.stat(work / "b.txt").st_gid == grp.getgrnam("nogroup").gr_gid  # the link's target changed
    assert "kiln-no-such-user" in run.failure("UnknownUser")
    assert "kiln-no-such-group" in run.failure("UnknownGroup")
    assert os.stat(work / "a.txt").st_uid == NOBODY.pw_uid
    assert "does not exist" in run.failure("Missing")
    assert "is a folder" in run.failure("Folder")


def test_set_folder_owner(toe: Toe, work: Path) -> None:
    for name in ("deep", "flat"):
        (work / name / "sub").mkdir(parents=True)
        (work / name / "sub/f").write_text("f")
    outside = work / "outside.txt"
    outside.write_text("o")
    os.symlink(outside, work / "deep/link")
    run = toe(
        """
        - name: Own
          action: SetFolderOwner
          inputs:
            - path: '{{ Work }}/deep/'
              owner: nobody
              group: nogroup
            - path: '{{ Work }}/flat'
              owner: nobody
              recursive: false
        - name: Missing
          action: SetFolderOwner
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/nope'
              owner: nobody
        - name: NotFolder
          action: SetFolderOwner
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/outside.txt'
              owner: nobody
        """
    )
    nogroup = grp.getgrnam("nogroup").gr_gid
    for rel in ("deep", "deep/sub", "deep/sub/f"):
        assert (os.stat(work / rel).st_uid, os.stat(work / rel).st_gid) == (NOBODY.pw_uid, nogroup)
    assert os.lstat(work / "deep/link").st_uid == NOBODY.pw_uid
    assert os.stat(outside).st_uid == 0  # the link itself changed, not what it points to
    assert os.stat(work / "flat").st_uid == NOBODY.pw_uid
    assert os.stat(work / "flat/sub").st_uid == 0 and os.stat(work / "flat/sub/f").st_uid == 0
    assert "does not exist" in run.failure("Missing")
    assert "is not a folder" in run.failure("NotFolder")


def test_set_permissions(toe: Toe, work: Path) -> None:
    (work / "f.txt").write_text("f")
    for name in ("deep", "flat"):
        (work / name / "sub").mkdir(parents=True)
        (work / name / "sub/g").write_text("g")
    outside = work / "outside.txt"
    outside.write_text("o")
    outside.chmod(0o600)
    os.symlink(outside, work / "deep/link")
    run = toe(
        """
        - name: File
          action: SetFilePermissions
          inputs:
            - path: '{{ Work }}/f.txt'
              permissions: '4751'
        - name: Folders
          action: SetFolderPermissions
          inputs:
            - path: '{{ Work }}/deep'
              permissions: '0750'
            - path: '{{ Work }}/flat'
              permissions: 700
              recursive: false
        - name: FileMissing
          action: SetFilePermissions
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/nope'
              permissions: '644'
        - name: FolderMissing
          action: SetFolderPermissions
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/nope'
              permissions: '755'
        - name: BadMode
          action: SetFilePermissions
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/f.txt'
              permissions: '{{ Work }}'
        """
    )
    assert mode(work / "f.txt") == 0o4751
    for rel in ("deep", "deep/sub", "deep/sub/g"):
        assert mode(work / rel) == 0o750
    assert mode(outside) == 0o600  # links inside the folder are not followed
    assert mode(work / "flat") == 0o700 and mode(work / "flat/sub") == 0o755
    assert "does not exist" in run.failure("FileMissing")
    assert "does not exist" in run.failure("FolderMissing")
    assert "not an octal mode" in run.failure("BadMode")


class RootedExecutor(HostExecutor):
    """An instance-like executor: target paths live under ``root``; links resolve inside it."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def host_path(self, path: str) -> Path:
        return resolve_in_root(self.root, path)

    def run(self, argv: Sequence[str], **options: object) -> ProcessResult:  # type: ignore[override]
        raise AssertionError("file actions must not run processes")

    def os_info(self) -> OsInfo:
        return OsInfo(id="debian", version_id="12")


def test_rooted_executor_keeps_links_inside_the_root(toe: Toe, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.symlink("/", root / "etc")  # inside the target, /etc is the root folder itself
    os.symlink("/etc/passwd", root / "passwd-link")
    (root / "hostname").write_text("instance-host\n")
    outside = tmp_path / "host-only" / "dangling-target.txt"  # absent on the host and in the root
    os.symlink(outside, root / "dangling")
    host_marker = Path("/etc/kiln-files-test-marker")
    host_app = Path("/etc/opt/app")
    assert not host_marker.exists() and not host_app.exists()
    run = toe(
        """
        - name: Write
          action: CreateFile
          inputs:
            - path: /etc/kiln-files-test-marker
              content: inside
        - name: Read
          action: ReadFile
          inputs:
            - path: /etc/hostname
        - name: Folder
          action: CreateFolder
          inputs:
            - path: /etc/opt/app
        - name: Copy
          action: CopyFile
          inputs:
            - source: /etc/hostname
              destination: /etc/opt/app/
        - name: List
          action: ListFiles
          inputs:
            - path: /etc/opt/app
        - name: Perms
          action: SetFilePermissions
          inputs:
            - path: /etc/kiln-files-test-marker
              permissions: '0600'
        - name: HostPasswd
          action: ReadFile
          onFailure: Continue
          inputs:
            - path: /passwd-link
        - name: Dangling
          action: CreateFile
          inputs:
            - path: /dangling
              content: stays in
        - name: Append
          action: AppendFile
          inputs:
            - path: /dangling
              content: ' the root'
        - name: Delete
          action: DeleteFile
          inputs:
            - path: /etc/opt/app/hostname
        """,
        executor=RootedExecutor(root),
        w="/",
    )
    assert not host_marker.exists() and not host_app.exists()
    assert (root / "kiln-files-test-marker").read_text() == "inside"
    assert mode(root / "kiln-files-test-marker") == 0o600
    assert run.output("Read", "content") == "instance-host\n"
    assert run.output("List", "files") == "/etc/opt/app/hostname"
    assert (root / "opt/app").is_dir() and not (root / "opt/app/hostname").exists()
    # /passwd-link -> /etc/passwd -> (root)/passwd, which the instance doesn't have
    assert "does not exist" in run.failure("HostPasswd")
    assert not outside.exists() and not outside.parent.exists()
    assert (root / str(outside).lstrip("/")).read_text() == "stays in the root"
    assert os.path.islink(root / "etc") and os.readlink(root / "etc") == "/"

