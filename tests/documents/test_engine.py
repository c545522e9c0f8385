from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.documents.engine import Engine
from kiln.documents.host import HostExecutor
from kiln.documents.report import Execution, StepRecord
from kiln.documents.validate import load_document
from kiln.errors import InvalidInput

Run = Callable[..., tuple[Execution, HostExecutor]]


def steps(execution: Execution) -> dict[str, StepRecord]:
    return {s.name: s for s in execution.steps()}


def test_parameters_chaining_loops_and_if(run_doc: Run) -> None:
    execution, _ = run_doc(
        """
        schemaVersion: 1.0
        parameters:
          - Greeting: {type: string, default: hello}
          - Times: {type: integer, default: 2}
        constants:
          - Sep: {type: string, value: ':'}
        phases:
          - name: build
            steps:
              - name: Say
                action: ExecuteBash
                inputs:
                  commands: ['echo "{{ Greeting }}{{ Sep }}{{ Times }}"']
              - name: Each
                action: ExecuteBash
                loop:
                  name: item
                  forEach: [a, '{{ build.Say.outputs.stdout }}']
                inputs:
                  commands: ['echo "{{ loop.index }}-{{ item.value }}"']
              - name: Count
                action: ExecuteBash
                loop: {for: {start: 10, end: 4, updateBy: -3}}
                inputs:
                  commands: ['echo {{ loop.value }}']
              - name: Split
                action: ExecuteBash
                loop: {forEach: {list: 'x;y;z', delimiter: ';'}}
                inputs:
                  commands: ['echo {{ loop.value }}']
              - name: OnlyIfHi
                action: ExecuteBash
                if: {stringEquals: 'HI:3', value: '{{ build.Say.outputs.stdout }}'}
                inputs:
                  commands: ['echo ran']
              - name: CaseInsensitive
                action: ExecuteBash
                if: {stringEquals: 'HI:2', value: '{{ build.Say.outputs.stdout }}'}
                inputs:
                  commands: ['echo ran']
          - name: validate
            steps:
              - name: Again
                action: ExecuteBinary
                inputs:
                  path: /bin/echo
                  arguments: ['{{ build.Each.outputs.stdout }}|{{ build.Say.inputs.commands }}']
        """,
        parameters={"Greeting": "hi"},
    )
    by_name = steps(execution)
    assert execution.status == "success"
    assert by_name["Say"].outputs == [{"stdout": "hi:2"}]
    assert by_name["Each"].outputs == [{"stdout": "0-a\n1-hi:2"}]
    assert by_name["Count"].outputs == [{"stdout": "10\n7\n4"}]
    assert by_name["Split"].outputs == [{"stdout": "x\ny\nz"}]
    assert by_name["OnlyIfHi"].status == "skipped"
    assert by_name["CaseInsensitive"].outputs == [{"stdout": "ran"}]
    assert by_name["Again"].outputs == [{"stdout": '0-a\n1-hi:2|["echo \\"hi:2\\""]'}]


def test_if_then_else_actions(run_doc: Run) -> None:
    execution, _ = run_doc(
        """
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Runs
                action: ExecuteBash
                if: {numberLessThan: 2, value: '1.5', then: Execute, else: Abort}
                inputs: {commands: [echo yes]}
              - name: ElseExecute
                action: ExecuteBash
                if: {fileExists: /nonexistent/file, else: Execute}
                inputs: {commands: [echo also]}
              - name: Stops
                action: ExecuteBash
                if: {and: [{binaryExists: bash}, {not: {stringIsEmpty: ''}}], else: Abort}
                inputs: {commands: [echo never]}
              - name: NeverReached
                action: ExecuteBash
                inputs: {commands: [echo never]}
        """
    )
    by_name = steps(execution)
    assert by_name["Runs"].status == "success"
    assert by_name["ElseExecute"].outputs == [{"stdout": "also"}]
    assert by_name["Stops"].status == "failed"
    assert "Abort" in by_name["Stops"].failure_message
    assert "NeverReached" not in by_name
    assert execution.status == "failed"


def test_retries_until_success_and_exhaustion(run_doc: Run, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    doc = f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Flaky
                action: ExecuteBash
                maxAttempts: MAX
                inputs:
                  commands:
                    - echo x >> {counter}
                    - test "$(wc -l < {counter})" -ge 3
        """
    execution, _ = run_doc(doc.replace("MAX", "3"))
    assert steps(execution)["Flaky"].status == "success"
    assert steps(execution)["Flaky"].attempts == 3
    counter.unlink()
    execution, _ = run_doc(doc.replace("MAX", "2"))
    assert steps(execution)["Flaky"].status == "failed"
    assert counter.read_text().count("x") == 2


def test_errexit_stops_script_at_first_failure(run_doc: Run) -> None:
    execution, _ = run_doc(
        """
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fails
                action: ExecuteBash
                inputs: {commands: [echo before, 'false', echo after]}
        """
    )
    record = steps(execution)["Fails"]
    assert record.status == "failed"
    assert record.failure_message.startswith("exit status 1")
    assert execution.failure_message.startswith("step Fails failed")


@pytest.mark.parametrize(
    ("on_failure", "step_status", "run_status", "next_runs"),
    [("Abort", "failed", "failed", False), ("Continue", "failed", "failed", True),
     ("Ignore", "ignored", "success", True)],
)
def test_on_failure(
    run_doc: Run, on_failure: str, step_status: str, run_status: str, next_runs: bool
) -> None:
    execution, _ = run_doc(
        f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Bad
                action: ExecuteBash
                onFailure: {on_failure}
                inputs: {{commands: ['exit 3']}}
              - name: Next
                action: ExecuteBash
                inputs: {{commands: [echo next]}}
          - name: test
            steps:
              - name: Later
                action: ExecuteBash
                inputs: {{commands: [echo later]}}
        """
    )
    by_name = steps(execution)
    assert by_name["Bad"].status == step_status
    assert ("Next" in by_name) is next_runs
    assert ("Later" in by_name) is next_runs
    assert execution.status == run_status
    counts = execution.counts()
    assert counts["failedStepCount"] == (1 if step_status == "failed" else 0)
    assert counts["ignoredFailedStepCount"] == (1 if step_status == "ignored" else 0)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_timeout_kills_the_whole_process_group(run_doc: Run, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    execution, _ = run_doc(
        f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Hangs
                action: ExecuteBash
                timeoutSeconds: 2
                inputs:
                  commands:
                    - sleep 300 &
                    - echo $! > {pidfile}
                    - wait
        """
    )
    record = steps(execution)["Hangs"]
    assert record.status == "failed"
    assert "timed out" in record.failure_message
    grandchild = int(pidfile.read_text())
    # SIGKILL is delivered at once but the kernel may take a moment to finish the exit
    for _ in range(100):
        if not _alive(grandchild):
            break
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_exit_194_reboots_and_reruns_the_step(run_doc: Run, tmp_path: Path) -> None:
    marker = tmp_path / "rebooted"
    execution, executor = run_doc(
        f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: NeedsReboot
                action: ExecuteBash
                inputs:
                  commands:
                    - if [ ! -e {marker} ]; then touch {marker}; exit 194; fi
                    - echo resumed
              - name: After
                action: Reboot
              - name: Last
                action: ExecuteBash
                inputs: {{commands: [echo last]}}
        """
    )
    by_name = steps(execution)
    assert by_name["NeedsReboot"].status == "success"
    assert by_name["NeedsReboot"].reboots == 1
    assert by_name["NeedsReboot"].outputs == [{"stdout": "resumed"}]
    assert by_name["After"].status == "success"
    assert by_name["Last"].status == "success"
    assert len(executor.reboots) == 2  # recorded, never carried out on the host


def test_reboots_are_bounded(run_doc: Run) -> None:
    execution, executor = run_doc(
        """
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Forever
                action: ExecuteBash
                inputs: {commands: ['exit 194']}
        """,
        max_reboots=2,
    )
    record = steps(execution)["Forever"]
    assert record.status == "failed"
    assert "more than 2 reboots" in record.failure_message
    assert len(executor.reboots) == 2


def test_several_documents_run_in_order(write_doc: Callable[..., Path], tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    template = """
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: B
                action: ExecuteBash
                inputs: {{commands: ['echo {doc}-build >> {trace}']}}
          - name: validate
            steps:
              - name: V
                action: ExecuteBash
                inputs: {{commands: ['echo {doc}-validate >> {trace}']}}
          - name: test
            steps:
              - name: T
                action: ExecuteBash
                inputs: {{commands: ['echo {doc}-test >> {trace}']}}
        """
    docs = [load_document(write_doc(template.format(doc=name, trace=trace), f"{name}.yaml"))
            for name in ("one", "two")]
    execution = Engine(HostExecutor()).run(docs, phases=["test", "build"])
    assert trace.read_text().split() == ["one-build", "two-build", "one-test", "two-test"]
    assert [[p.name for p in d.phases] for d in execution.documents] == [["build", "test"]] * 2
    trace.unlink()
    Engine(HostExecutor()).run(docs, phase_major=False)
    assert trace.read_text().split() == [
        "one-build", "one-validate", "one-test", "two-build", "two-validate", "two-test"]


def test_abort_stops_later_documents(write_doc: Callable[..., Path], tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    first = write_doc(f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fail
                action: ExecuteBash
                inputs: {{commands: ['echo one >> {trace}', 'exit 1']}}
        """, "first.yaml")
    second = write_doc(f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Never
                action: ExecuteBash
                inputs: {{commands: ['echo two >> {trace}']}}
        """, "second.yaml")
    execution = Engine(HostExecutor()).run([load_document(first), load_document(second)])
    assert trace.read_text().split() == ["one"]
    assert execution.status == "failed"
    assert [d.file_path for d in execution.documents] == [str(first)]


def test_execute_document_nests_and_refuses_cycles(write_doc: Callable[..., Path]) -> None:
    write_doc(
        """
        schemaVersion: 1.0
        parameters:
          - Who: {type: string}
        phases:
          - name: build
            steps:
              - name: Hello
                action: ExecuteBash
                inputs: {commands: ['echo "hello {{ Who }}"']}
        """,
        "child.yaml",
    )
    parent = write_doc(
        """
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Nest
                action: ExecuteDocument
                inputs:
                  document: child.yaml
                  parameters: [{name: Who, value: world}]
              - name: Self
                action: ExecuteDocument
                onFailure: Continue
                inputs: {document: parent.yaml}
        """,
        "parent.yaml",
    )
    execution = Engine(HostExecutor()).run([load_document(parent)])
    by_name = steps(execution)
    nest = by_name["Nest"]
    assert nest.status == "success"
    assert nest.outputs[0]["outputs"][0]["status"] == "success"
    detail = nest.detailed_output[0]
    assert detail["documents"][0]["phases"][0]["steps"][0]["outputs"] == '[{"stdout": "hello world"}]'
    assert by_name["Self"].status == "failed"
    assert "calls itself" in by_name["Self"].failure_message


def test_inputs_are_checked_again_after_resolution(run_doc: Run) -> None:
    execution, _ = run_doc(
        """
        schemaVersion: 1.0
        parameters:
          - Delay: {type: string, default: soon}
        phases:
          - name: build
            steps:
              - name: Wait
                action: Reboot
                inputs: {delaySeconds: '{{ Delay }}'}
        """
    )
    record = steps(execution)["Wait"]
    assert record.status == "failed"
    assert record.failure_message.startswith("invalid inputs for Reboot: delaySeconds")


def test_execute_binary_and_assert(run_doc: Run) -> None:
    execution, _ = run_doc(
        """
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Echo
                action: ExecuteBinary
                inputs: {path: /bin/echo, arguments: [one, two]}
              - name: Good
                action: Assert
                inputs: {stringEquals: 'ONE TWO', value: '{{ build.Echo.outputs.stdout }}'}
              - name: Bad
                action: Assert
                inputs: {numberGreaterThan: 5, value: '3'}
        """
    )
    by_name = steps(execution)
    assert by_name["Echo"].outputs == [{"stdout": "one two"}]
    assert by_name["Good"].status == "success"
    assert by_name["Bad"].status == "failed"
    assert by_name["Bad"].failure_message.startswith("assertion failed")


def test_parameters_are_bound_before_anything_runs(write_doc: Callable[..., Path], tmp_path: Path) -> None:
    flag = tmp_path / "ran"
    doc = load_document(write_doc(
        f"""
        schemaVersion: 1.0
        parameters:
          - Needed: {{type: string}}
          - Number: {{type: integer, default: 1}}
        phases:
          - name: build
            steps:
              - name: A
                action: ExecuteBash
                inputs: {{commands: ['touch {flag}']}}
        """
    ))
    with pytest.raises(InvalidInput, match="'Needed' has no default"):
        Engine(HostExecutor()).run([doc])
    with pytest.raises(InvalidInput, match="not an integer"):
        Engine(HostExecutor()).run([doc], parameters={"Needed": "x", "Number": "many"})
    assert not flag.exists()
    assert Engine(HostExecutor()).run([doc], parameters={"Needed": "x", "Unknown": "y"}).status == "success"
    assert flag.exists()


def test_host_executor_basics() -> None:
    executor = HostExecutor()
    lines: list[str] = []
    result = executor.run(["sh", "-c", "echo out; echo err >&2; exit 4"], on_stdout=lines.append)
    assert (result.exit_code, result.stdout, result.stderr, lines) == (4, "out\n", "err\n", ["out"])
    assert executor.run(["cat"], stdin=b"piped").stdout == "piped"
    assert executor.host_path("/etc/passwd") == Path("/etc/passwd")
    assert executor.user_id("root") == 0 and executor.group_id("0") == 0
    assert executor.os_info().platform == "Linux"
    assert os.path.exists("/etc/os-release") <= bool(executor.os_info().id)
