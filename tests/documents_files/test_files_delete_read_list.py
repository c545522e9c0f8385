from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from files_toe import Run

Toe = Callable[..., Run]


def test_delete_file(toe: Toe, work: Path) -> None:
    for name in ("a.txt", "b.log", "c.log", "keep.txt"):
        (work / name).write_text(name)
    (work / "dir.log").mkdir()
    (work / "target.txt").write_text("T")
    os.symlink(work / "target.txt", work / "link.txt")
    run = toe(
        """
        - name: Delete
          action: DeleteFile
          inputs:
            - path: '{{ Work }}/a.txt'
            - path: '{{ Work }}/*log'
            - path: '{{ Work }}/link.txt'
            - path: '{{ Work }}/already-gone.txt'
        - name: Folder
          action: DeleteFile
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/dir.log'
        """
    )
    assert sorted(os.listdir(work)) == ["dir.log", "keep.txt", "target.txt"]
    assert (work / "target.txt").read_text() == "T"  # the link went, not its target
    assert run.steps["Delete"].status == "success"
    assert "is a folder" in run.failure("Folder")


def test_delete_folder(toe: Toe, work: Path) -> None:
    (work / "empty").mkdir()
    (work / "full/sub").mkdir(parents=True)
    (work / "full/sub/f").write_text("f")
    (work / "outside").mkdir()
    (work / "outside/precious").write_text("p")
    os.symlink(work / "outside", work / "full/sub/link")
    (work / "afile").write_text("x")
    run = toe(
        """
        - name: Empty
          action: DeleteFolder
          inputs:
            - path: '{{ Work }}/empty/'
            - path: '{{ Work }}/never-there'
        - name: NotEmpty
          action: DeleteFolder
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/full'
        - name: NotAFolder
          action: DeleteFolder
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/afile'
        - name: Force
          action: DeleteFolder
          inputs:
            - path: '{{ Work }}/full'
              force: true
        """
    )
    assert not (work / "empty").exists()
    assert "not empty and force is false" in run.failure("NotEmpty")
    assert "not a folder" in run.failure("NotAFolder")
    assert not (work / "full").exists()
    assert (work / "outside/precious").read_text() == "p"


def test_read_file_encodings_links_console_and_failures(toe: Toe, work: Path) -> None:
    (work / "plain.txt").write_text("hello\nworld")
    (work / "bom.txt").write_bytes(b"\xef\xbb\xbfwith bom")
    (work / "u16be.txt").write_bytes("wide €".encode("utf-16-be"))
    (work / "u32.txt").write_bytes("\ufeffthirty-two".encode("utf-32-le"))
    (work / "binary.bin").write_bytes(b"\xff\xfe\xfa")
    os.symlink(work / "plain.txt", work / "link.txt")
    run = toe(
        """
        - name: Plain
          action: ReadFile
          inputs:
            - path: '{{ Work }}/link.txt'
              printFileContent: true
        - name: Bom
          action: ReadFile
          inputs:
            - path: '{{ Work }}/bom.txt'
        - name: Wide
          action: ReadFile
          inputs:
            - path: '{{ Work }}/u16be.txt'
              encoding: UTF16-BE
        - name: ThirtyTwo
          action: ReadFile
          inputs:
            - path: '{{ Work }}/u32.txt'
              encoding: utf-32
        - name: Two
          action: ReadFile
          inputs:
            - path: '{{ Work }}/bom.txt'
            - path: '{{ Work }}/u16be.txt'
              encoding: utf-16-be
        - name: Check
          action: Assert
          inputs:
            stringEquals: 'hello world'
            value: "{{ build.Plain.outputs.content }}"
          onFailure: Continue
        - name: Missing
          action: ReadFile
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/nope.txt'
        - name: Binary
          action: ReadFile
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/binary.bin'
        - name: Folder
          action: ReadFile
          onFailure: Continue
          inputs:
            - path: '{{ Work }}'
        """
    )
    assert run.output("Plain", "content") == "hello\nworld"
    assert run.console.count("hello") == 1 and run.console.count("world") == 1
    assert "with bom" not in run.console  # printFileContent defaults to false
    assert run.output("Bom", "content") == "with bom"
    assert run.output("Wide", "content") == "wide €"
    assert run.output("ThirtyTwo", "content") == "thirty-two"
    assert run.output("Two", "content") == "with bom\nwide €"
    assert run.steps["Check"].status == "failed"  # the content keeps its newline
    assert "does not exist" in run.failure("Missing")
    assert "not valid utf8 text" in run.failure("Binary")
    assert "is a folder" in run.failure("Folder")


def test_list_files(toe: Toe, work: Path) -> None:
    (work / "d/sub/deeper").mkdir(parents=True)
    for rel in ("a.log", "b.txt", "sub/c.log", "sub/deeper/d.log"):
        (work / "d" / rel).write_text(rel)
    os.symlink("/etc", work / "d/sub/etc-link")
    (work / "afile").write_text("x")
    run = toe(
        """
        - name: Flat
          action: ListFiles
          inputs:
            - path: '{{ Work }}/d'
        - name: Logs
          action: ListFiles
          inputs:
            - path: '{{ Work }}/d/'
              fileNamePattern: '*log'
              recursive: true
        - name: All
          action: ListFiles
          inputs:
            - path: '{{ Work }}/d'
              recursive: true
        - name: Count
          action: ExecuteBash
          inputs:
            commands:
              - echo "{{ build.Logs.outputs.files }}" | tr ',' '\\n' | wc -l
        - name: Missing
          action: ListFiles
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/nope'
        - name: NotFolder
          action: ListFiles
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/afile'
        """
    )
    d = f"{work}/d"
    assert run.output("Flat", "files") == f"{d}/a.log,{d}/b.txt"
    assert run.output("Logs", "files") == f"{d}/a.log,{d}/sub/c.log,{d}/sub/deeper/d.log"
    listed = run.output("All", "files").split(",")  # type: ignore[union-attr]
    assert f"{d}/sub/etc-link" in listed and not any("/passwd" in f for f in listed)
    assert len(listed) == 5
    assert run.output("Count", "stdout") == "3"
    assert "does not exist" in run.failure("Missing")
    assert "is not a folder" in run.failure("NotFolder")


def test_set_file_encoding(toe: Toe, work: Path) -> None:
    (work / "a.txt").write_text("grüße")
    (work / "b.txt").write_text("be")
    (work / "bad.txt").write_bytes(b"\xff\xfe\x00")
    run = toe(
        """
        - name: Convert
          action: SetFileEncoding
          inputs:
            - path: '{{ Work }}/a.txt'
              encoding: utf-16
            - path: '{{ Work }}/b.txt'
              encoding: UTF-32-BE
        - name: Back
          action: ReadFile
          inputs:
            - path: '{{ Work }}/a.txt'
              encoding: utf16-le
        - name: Missing
          action: SetFileEncoding
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/nope.txt'
              encoding: utf16
        - name: NotUtf8
          action: SetFileEncoding
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/bad.txt'
              encoding: utf16
        """
    )
    assert (work / "a.txt").read_bytes() == "grüße".encode("utf-16-le")
    assert (work / "b.txt").read_bytes() == "be".encode("utf-32-be")
    assert run.output("Back", "content") == "grüße"
    assert "does not exist" in run.failure("Missing")
    assert "not valid utf8" in run.failure("NotUtf8") and (work / "bad.txt").read_bytes() == b"\xff\xfe\x00"
