"""``kiln apply`` refuses oversize files before parsing them, too many documents, and alias bombs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kiln.errors import InvalidInput
from kiln.services.apply import MAX_DOCUMENTS, MAX_FILE_BYTES, apply_file, apply_text
from kiln.services.configurations.infrastructure import list_infrastructure_configurations


def peak_kib() -> int:  # this process image's peak (ru_maxrss would carry the forking parent's over exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def test_oversize_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w") as handle:  # 50 MB of valid documents
        handle.write("kind: InfrastructureConfiguration\nname: a\n---\n" * (50_000_000 // 48))
    script = textwrap.dedent(f"""
        import sys
        def peak_kib():  # this process image's peak (ru_maxrss would carry the forking parent's over exec)
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
        from kiln.errors import InvalidInput
        from kiln.services.apply import apply_file
        try:
            apply_file({str(big)!r})
        except InvalidInput as error:
            print(error)
        print(peak_kib())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    message, peak = result.stdout.strip().splitlines()
    assert message.startswith(f"{big}: the file is ")
    assert f"at most {MAX_FILE_BYTES} bytes" in message
    assert int(peak) < 200 * 1024  # never read whole: the 50 MB text alone would show
    assert list_infrastructure_configurations()["infrastructureConfigurationSummaryList"] == []


def test_too_many_documents_are_refused_and_nothing_is_created() -> None:
    text = "".join(f"kind: InfrastructureConfiguration\nname: infra-{n}\n---\n" for n in range(MAX_DOCUMENTS + 1))
    with pytest.raises(InvalidInput) as caught:
        apply_text(text, source="many.yaml")
    assert f"more than {MAX_DOCUMENTS} documents" in caught.value.message
    assert caught.value.location == f"many.yaml: document {MAX_DOCUMENTS + 1} (line {3 * MAX_DOCUMENTS + 1})"
    assert list_infrastructure_configurations()["infrastructureConfigurationSummaryList"] == []


def test_alias_bomb_is_refused_with_its_place() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [*a{n - 1}, *a{n - 1}, *a{n - 1}, *a{n - 1}, *a{n - 1}, *a{n - 1}, *a{n - 1}, "
              f"*a{n - 1}, *a{n - 1}, *a{n - 1}]" for n in range(1, 9)]
    text = "kind: InfrastructureConfiguration\nname: bomb\n" + "\n".join(lines) + "\n"
    before = peak_kib()
    with pytest.raises(InvalidInput) as caught:
        apply_text(text, source="bomb.yaml")
    assert "expands to more than" in caught.value.message
    assert caught.value.location is not None and caught.value.location.startswith("bomb.yaml:")
    assert peak_kib() - before < 100 * 1024
    assert list_infrastructure_configurations()["infrastructureConfigurationSummaryList"] == []


def test_stdin_is_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("# padding\n" * (MAX_FILE_BYTES // 10 + 10)))
    with pytest.raises(InvalidInput) as caught:
        apply_file("-")
    assert caught.value.location == "<stdin>"
