"""Engine overhead: ExecuteBash steps vs plain ``bash -c`` spawns; validation time of a big document.

Goals: engine/plain ratio <= 1.3; validating a 500-step document < 150 ms.
"""

from __future__ import annotations

import subprocess
import time

STEPS = 1000
ROUNDS = 2


def _document(steps: int) -> str:
    lines = ["name: bench", "schemaVersion: 1.0", "parameters:", "  - Word:", "      type: string",
             "      default: hi", "phases:", "  - name: build", "    steps:"]
    for index in range(steps):
        lines += [f"      - name: Step{index}", "        action: ExecuteBash", "        inputs:",
                  "          commands:", f"            - echo {{{{ Word }}}} {index}"]
    return "\n".join(lines) + "\n"


def _engine_seconds(doc: object, steps: int) -> float:
    from kiln.documents.engine import Engine
    from kiln.documents.host import HostExecutor

    started = time.perf_counter()
    execution = Engine(HostExecutor()).run([doc])  # type: ignore[list-item]
    elapsed = time.perf_counter() - started
    assert execution.status == "success" and len(execution.steps()) == steps
    return elapsed


def _plain_seconds(steps: int) -> float:
    started = time.perf_counter()
    for index in range(steps):
        result = subprocess.run(["bash", "-c", f"echo hi {index}"], capture_output=True, check=False)
        assert result.returncode == 0
    return time.perf_counter() - started


def run() -> dict:
    from kiln.documents.validate import parse

    text = _document(STEPS)
    doc, issues = parse(text, "bench.yaml")
    assert not issues and doc is not None
    engine_times, plain_times = [], []
    for _ in range(ROUNDS):  # interleaved, so both see the same machine load
        plain_times.append(_plain_seconds(STEPS))
        engine_times.append(_engine_seconds(doc, STEPS))
    engine, plain = min(engine_times), min(plain_times)

    small = _document(500)
    validation = []
    for _ in range(5):
        started = time.perf_counter()
        _, issues = parse(small, "bench500.yaml")
        validation.append(time.perf_counter() - started)
        assert not issues
    return {
        "steps": STEPS,
        "engine_seconds": round(engine, 3),
        "plain_bash_seconds": round(plain, 3),
        "engine_over_plain_ratio": round(engine / plain, 3),
        "engine_ratio_goal": 1.3,
        "validate_500_steps_ms": round(min(validation) * 1000, 1),
        "validate_goal_ms": 150,
    }


if __name__ == "__main__":
    print(run())
