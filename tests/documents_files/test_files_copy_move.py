from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from files_toe import Run

Toe = Callable[..., Run]


def tree(root: Path) -> dict[str, str]:
    """Every file under root (relative path -> text; links as '-> target')."""
    found = {}
    for current, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(current, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                found[rel] = path.read_text()
    return found


def test_copy_file_names_wildcards_and_overwrite(toe: Toe, work: Path) -> None:
    src = work / "src"
    src.mkdir()
    for name in ("Sample1.txt", "Sample2.txt", "other.log"):
        (src / name).write_text(name)
    (src / "SampleDir").mkdir()
    (src / "Sample1.txt").chmod(0o750)
    (work / "kept.txt").write_text("old")
    run = toe(
        """
        - name: Rename
          action: CopyFile
          inputs:
            - source: '{{ Work }}/src/Sample1.txt'
              destination: '{{ Work }}/out/new/renamed.txt'
            - source: '{{ Work }}/src/other.log'
              destination: '{{ Work }}/out/'
            - source: '{{ Work }}/src/Sample*'
              destination: '{{ Work }}/wild/'
        - name: Overwrites
          action: CopyFile
          inputs:
            - source: '{{ Work }}/src/Sample2.txt'
              destination: '{{ Work }}/out/new/renamed.txt'
        - name: NoOverwrite
          action: CopyFile
          onFailure: Continue
          inputs:
            - source: '{{ Work }}/src/Sample1.txt'
              destination: '{{ Work }}/kept.txt'
              overwrite: false
        - name: Missing
          action: CopyFile
          onFailure: Continue
          inputs:
            - source: '{{ Work }}/src/nothing.txt'
              destination: '{{ Work }}/out/'
        - name: NoMatch
          action: CopyFile
          onFailure: Continue
          inputs:
            - source: '{{ Work }}/src/zzz*'
              destination: '{{ Work }}/out/'
        - name: WildcardNeedsFolder
          action: CopyFile
          onFailure: Continue
          inputs:
            - source: '{{ Work }}/src/Sample*'
              destination: '{{ Work }}/out/one.txt'
        - name: SourceIsFolder
          action: CopyFile
          onFailure: Continue
          inputs:
            - source: '{{ Work }}/src/SampleDir'
              destination: '{{ Work }}/out/'
        - name: OntoFolder
          action: CopyFile
          onFailure: Continue
          inputs:
            - source: '{{ Work }}/src/other.log'
              destination: '{{ Work }}/src/SampleDir'
        """
    )
    assert (work / "out/other.log").read_text() == "other.log"
    assert tree(work / "wild") == {"Sample1.txt": "Sample1.txt", "Sample2.txt": "Sample2.txt"}
    assert (work / "wild/Sample1.txt").stat().st_mode & 0o777 == 0o750
    assert (work / "out/new/renamed.txt").read_text() == "Sample2.txt"
    assert "overwrite is false" in run.failure("NoOverwrite") and (work / "kept.txt").read_text() == "old"
    assert "does not exist" in run.failure("Missing")
    assert "does not exist" in run.failure("NoMatch")
    assert "must end with '/'" in run.failure("WildcardNeedsFolder")
    assert "is not a file" in run.failure("SourceIsFolder")
    assert "is a folder" in run.failure("OntoFolder")
    # copying leaves the sources in place
    assert tree(src) == {"Sample1.txt": "Sample1.txt", "Sample2.txt": "Sample2.txt", "other.log": "other.log"}


def test_copy_file_replaces_a_link_instead_of_writing_through_it(toe: Toe, work: Path) -> None:
    (work / "victim.txt").write_text("untouched")
    (work / "a.txt").write_text("A")
    os.symlink(work / "victim.txt", work / "link.txt")
    toe(
        """
        - name: Copy
          action: CopyFile
          inputs:
            - source: '{{ Work }}/a.txt'
              destination: '{{ Work }}/link.txt'
        """
    )
    assert not (work / "link.txt").is_symlink() and (work / "link.txt").read_text() == "A"
    assert (work / "victim.txt").read_text() == "untouched"


def test_copy_folder(toe: Toe, work: Path) -> None:
    (work / "site/sub").mkdir(parents=True)
    (work / "site/index.html").write_text("i")
    (work / "site/sub/page.html").write_text("p")
    os.symlink("/etc/hostname", work / "site/link")
    (work / "site2").mkdir()
    (work / "site2/x").write_text("x")
    (work / "dest/site").mkdir(parents=True)
    (work / "dest/site/stale.txt").write_text("stale")
    run = toe(
        """
        - name: Copy
          action: CopyFolder
          inputs:
            - source: '{{ Work }}/site'
              destination: '{{ Work }}/copies/renamed'
            - source: '{{ Work }}/site*'
              destination: '{{ Work }}/wild/'
            - source: '{{ Work }}/site'
              destination: '{{ Work }}/dest/'
        - name: NoOverwrite
          action: CopyFolder
          onFailure: Continue
          inputs:
            - source: '{{ Work }}/site2'
              destination: '{{ Work }}/copies/renamed'
              overwrite: false
        - name: Missing
          action: CopyFolder
          onFailure: Continue
          inputs:
            - source: '{{ Work }}/nope'
              destination: '{{ Work }}/copies/'
        - name: IntoItself
          action: CopyFolder
          onFailure: Continue
          inputs:
            - source: '{{ Work }}/site'
              destination: '{{ Work }}/site/inner/'
        """
    )
    expected = {"index.html": "i", "sub/page.html": "p", "link": "-> /etc/hostname"}
    assert tree(work / "copies/renamed") == expected
    assert tree(work / "wild/site") == expected and tree(work / "wild/site2") == {"x": "x"}
    assert tree(work / "dest/site") == expected  # overwrite replaced the old folder
    assert "overwrite is false" in run.failure("NoOverwrite")
    assert tree(work / "copies/renamed") == expected
    assert "does not exist" in run.failure("Missing")
    assert "inside itself" in run.failure("IntoItself")
    assert tree(work / "site") == expected


def test_move_file(toe: Toe, work: Path) -> None:
    (work / "a.txt").write_text("A")
    (work / "b.txt").write_text("B")
    (work / "log1.log").write_text("1")
    (work / "log2.log").write_text("2")
    (work / "c.txt").write_text("C")
    (work / "taken.txt").write_text("T")
    run = toe(
        """
        - name: Move
          action: MoveFile
          inputs:
            - source: '{{ Work }}/a.txt'
              destination: '{{ Work }}/moved/renamed.txt'
            - source: '{{ Work }}/b.txt'
              destination: '{{ Work }}/moved/'
            - source: '{{ Work }}/*.log'
              destination: '{{ Work }}/logs/'
        - name: NoOverwrite
          action: MoveFile
          onFailure: Continue
          inputs:
            - source: '{{ Work }}/c.txt'
              destination: '{{ Work }}/taken.txt'
              overwrite: false
        - name: Overwrite
          action: MoveFile
          inputs:
            - source: '{{ Work }}/c.txt'
              destination: '{{ Work }}/moved/renamed.txt'
        - name: Missing
          action: MoveFile
          onFailure: Continue
          inputs:
            - source: '{{ Work }}/a.txt'
              destination: '{{ Work }}/moved/'
        """
    )
    assert not (work / "a.txt").exists() and not (work / "b.txt").exists()
    assert (work / "moved/b.txt").read_text() == "B"
    assert tree(work / "logs") == {"log1.log": "1", "log2.log": "2"}
    assert "overwrite is false" in run.failure("NoOverwrite") and (work / "taken.txt").read_text() == "T"
    assert (work / "moved/renamed.txt").read_text() == "C" and not (work / "c.txt").exists()
    assert "does not exist" in run.failure("Missing")


def test_move_folder(toe: Toe, work: Path) -> None:
    for name in ("app", "lib1", "lib2", "other"):
        (work / name).mkdir()
        (work / name / "f").write_text(name)
    (work / "target/app").mkdir(parents=True)
    (work / "target/app/old").write_text("old")
    run = toe(
        """
        - name: Move
          action: MoveFolder
          inputs:
            - source: '{{ Work }}/app'
              destination: '{{ Work }}/target/'
            - source: '{{ Work }}/lib*'
              destination: '{{ Work }}/libs/'
        - name: NoOverwrite
          action: MoveFolder
          onFailure: Continue
          inputs:
            - source: '{{ Work }}/other'
              destination: '{{ Work }}/libs/lib1'
              overwrite: false
        - name: Rename
          action: MoveFolder
          inputs:
            - source: '{{ Work }}/other'
              destination: '{{ Work }}/renamed'
        - name: Missing
          action: MoveFolder
          onFailure: Continue
          inputs:
            - source: '{{ Work }}/app'
              destination: '{{ Work }}/again/'
        """
    )
    assert tree(work / "target/app") == {"f": "app"}
    assert tree(work / "libs") == {"lib1/f": "lib1", "lib2/f": "lib2"}
    assert "overwrite is false" in run.failure("NoOverwrite")
    assert tree(work / "renamed") == {"f": "other"} and not (work / "other").exists()
    assert "does not exist" in run.failure("Missing")
