from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from files_toe import Run

Toe = Callable[..., Run]


def test_hello_demo_runs_with_the_file_actions() -> None:
    from kiln.documents.demo import EXAMPLES, run_document_demo

    lines: list[str] = []
    result = run_document_demo(EXAMPLES / "hello-demo.yaml", parameters={"Shout": "true"}, say=lines.append)
    assert result["status"] == "success", lines
    assert result["files"] == ["fruits.txt", "greeting.txt"]
    steps = {s["name"]: s for p in result["documents"][0]["phases"] for s in p["steps"]}
    assert steps["MakeSite"]["status"] == "success" and steps["WriteGreeting"]["status"] == "success"
    assert json.loads(steps["ReadGreeting"]["outputs"]) == [{"content": "Hello from Linux"}]
    assert steps["CheckGreeting"]["status"] == "success"


def test_expressions_loops_and_several_inputs(toe: Toe, work: Path) -> None:
    (work / "logs").mkdir()
    (work / "more").mkdir()
    (work / "logs/a.log").write_text("a")
    (work / "more/b.log").write_text("b")
    (work / "keep.txt").write_text("old")
    run = toe(
        """
        - name: Flags
          action: ExecuteBash
          inputs:
            commands: ['echo false']
        - name: Each
          action: CreateFile
          loop:
            name: n
            forEach: [one, two]
          inputs:
            - path: '{{ Work }}/loop/{{ n.value }}.txt'
              content: '{{ n.index }}'
              encoding: '{{ build.Flags.outputs.stdout }}'
        - name: Keep
          action: CreateFile
          inputs:
            - path: '{{ Work }}/keep.txt'
              content: new
              overwrite: '{{ build.Flags.outputs.stdout }}'
        - name: Both
          action: ListFiles
          inputs:
            - path: '{{ Work }}/logs'
            - path: '{{ Work }}/more'
        - name: StarInFolder
          action: DeleteFile
          inputs:
            - path: '{{ Work }}/*/a.log'
        """
    )
    # the encoding expression resolves to 'false', which is not an encoding: the loop step fails
    assert "unsupported encoding 'false'" in run.failure("Each")
    assert not (work / "loop").exists() and (work / "keep.txt").read_text() == "old"  # Abort stopped the run
    run = toe(
        """
        - name: Flags
          action: ExecuteBash
          inputs:
            commands: ['echo false']
        - name: Each
          action: CreateFile
          loop:
            name: n
            forEach: [one, two]
          inputs:
            - path: '{{ Work }}/loop/{{ n.value }}.txt'
              content: '{{ n.index }}'
        - name: Keep
          action: CreateFile
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/keep.txt'
              content: new
              overwrite: '{{ build.Flags.outputs.stdout }}'
        - name: Both
          action: ListFiles
          inputs:
            - path: '{{ Work }}/logs'
            - path: '{{ Work }}/more'
        - name: StarInFolder
          action: DeleteFile
          onFailure: Continue
          inputs:
            - path: '{{ Work }}/*/a.log'
        """
    )
    assert (work / "loop/one.txt").read_text() == "0" and (work / "loop/two.txt").read_text() == "1"
    assert "overwrite is false" in run.failure("Keep") and (work / "keep.txt").read_text() == "old"
    assert run.output("Both", "files") == f"{work}/logs/a.log,{work}/more/b.log"
    assert "only after the last path separator" in run.failure("StarInFolder")
    assert (work / "logs/a.log").exists()
