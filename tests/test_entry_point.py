"""The installed ``kiln`` entry point as a real process: a few smoke tests of what in-process runs can't see
(the console script, ``sys.exit(run())``'s exit codes, import-time wiring). Every other CLI test runs
``kiln.cli.main.run`` in-process through the ``kiln`` fixture."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kiln import __version__


def _entry_point() -> list[str]:
    """The console script installed next to this interpreter (``pip install -e .``), else ``python -m kiln``."""
    script = Path(sys.executable).parent / "kiln"
    return [str(script)] if script.exists() else [sys.executable, "-m", "kiln"]


def kiln(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_entry_point(), *args], capture_output=True, text=True, timeout=120)


def test_help_lists_the_nouns() -> None:
    result = kiln("--help")
    assert result.returncode == 0, result.stderr
    assert "golden machine images" in result.stdout
    assert "component" in result.stdout and "lifecycle" in result.stdout


def test_version() -> None:
    result = kiln("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"kiln {__version__}")


def test_usage_errors_exit_2_with_one_message_not_a_traceback() -> None:
    result = kiln("component", "validate")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Missing option '--documents'" in result.stderr


def test_errors_exit_1_with_one_line_and_a_hint() -> None:
    result = kiln("component", "get", "arn:aws:imagebuilder:local:123456789012:component/nope/1.0.0/1")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    assert len(lines) <= 2 and all(line.startswith(("error: ", "hint: ")) for line in lines)


def test_output_json_on_stdout() -> None:
    result = kiln("component", "list", "--owner", "Amazon", "--output", "json")
    assert result.returncode == 0, result.stderr
    names = {entry["name"] for entry in json.loads(result.stdout)["componentVersionList"]}
    assert "kiln-hardening-linux" in names
