"""UpdateOS against a stand-in target: a temp root whose package managers are stub scripts that
record their command lines (a real upgrade cannot run in tests, and must never run on this host)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.documents_net.conftest import RootedExecutor, RunDoc, steps

from kiln.documents.report import Execution
from kiln.documents.validate import DocumentInvalid

STUB = r"""#!/bin/sh
root='{root}'
name=$(basename "$0")
{{ printf '%s' "$name"; for a in "$@"; do printf ' %s' "$a"; done; printf ' [%s]\n' "${{DEBIAN_FRONTEND:-}}"; }} \
  >> "$root/calls.log"
if [ "$name $1" = "apt-mark showhold" ] && [ -f "$root/held" ]; then cat "$root/held"; fi
if [ "$name $1" = "apk upgrade" ]; then sed 's/^/  world: /' "$root/etc/apk/world" >> "$root/calls.log"; fi
for rule in fail fail-once; do
  if [ -f "$root/$rule" ]; then
    read word code < "$root/$rule"
    case " $* " in *" $word "*)
      [ "$rule" = fail-once ] && rm "$root/$rule"
      [ "$code" = sleep ] && exec sleep 30
      echo "E: simulated $word failure" >&2; exit "$code";;
    esac
  fi
done
echo "$name done"
"""


Target = Callable[..., RootedExecutor]


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.delenv("DEBIAN_FRONTEND", raising=False)

    def make(os_id: str, *binaries: str, like: str = "", folder: str = "/usr/bin") -> RootedExecutor:
        root = tmp_path / "root"
        (root / "etc").mkdir(parents=True)
        (root / "etc/os-release").write_text(f"ID={os_id}\nVERSION_ID=1\n" + (f"ID_LIKE={like}\n" if like else ""))
        bin_dir = root / folder.lstrip("/")
        bin_dir.mkdir(parents=True)
        for name in binaries:
            (bin_dir / name).write_text(STUB.format(root=root))
            (bin_dir / name).chmod(0o755)
        return RootedExecutor(root)

    return make


def calls(executor: RootedExecutor) -> list[str]:
    log = executor.root / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def update(run_doc: RunDoc, executor: RootedExecutor, inputs: str = "", timeout: int = 60) -> Execution:
    body = f"\n                inputs:\n{textwrap.indent(textwrap.dedent(inputs), ' ' * 18)}" if inputs else ""
    return run_doc(f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Update
                action: UpdateOS
                timeoutSeconds: {timeout}{body}
    """, executor)


OPTS = "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"


def test_apt_full_upgrade(run_doc: RunDoc, target: Target) -> None:
    executor = target("debian", "apt-get", "apt-mark")
    execution = update(run_doc, executor)
    assert execution.status == "success", steps(execution)["Update"].failure_message
    assert calls(executor) == ["apt-get update [noninteractive]", f"apt-get -y {OPTS} upgrade [noninteractive]"]


def test_apt_include_exclude_and_existing_holds(run_doc: RunDoc, target: Target) -> None:
    executor = target("ubuntu", "apt-get", "apt-mark")
    (executor.root / "held").write_text("already-held\n")
    execution = update(run_doc, executor, """
        include: [curl, openssl, linux-image]
        exclude: [linux-image, already-held, nginx]
    """)
    assert execution.status == "success"
    assert calls(executor) == [
        "apt-get update [noninteractive]",
        "apt-mark showhold [noninteractive]",
        "apt-mark hold linux-image nginx [noninteractive]",
        f"apt-get install -y --only-upgrade {OPTS} curl openssl [noninteractive]",
        "apt-mark unhold linux-image nginx [noninteractive]",  # the pre-existing hold stays
    ]


def test_apt_failure_still_releases_holds(run_doc: RunDoc, target: Target) -> None:
    executor = target("debian", "apt-get", "apt-mark")
    (executor.root / "fail").write_text("upgrade 100\n")
    execution = update(run_doc, executor, "exclude: [nginx]")
    assert execution.status == "failed"
    assert steps(execution)["Update"].failure_message == (
        f"apt-get -y {OPTS} upgrade: exit status 100: E: simulated upgrade failure")
    assert calls(executor)[-1] == "apt-mark unhold nginx [noninteractive]"


def test_dnf_and_yum(run_doc: RunDoc, target: Target, tmp_path: Path) -> None:
    executor = target("amzn", "dnf", "yum", "apt-get")
    execution = update(run_doc, executor, """
        include: [kernel, bash]
        exclude: [bash, 'python3*']
    """)
    assert execution.status == "success"
    assert calls(executor) == ["dnf -y update --exclude=bash --exclude=python3* kernel []"]


def test_yum_only_system(run_doc: RunDoc, target: Target) -> None:
    executor = target("centos", "yum", folder="/bin")
    execution = update(run_doc, executor)
    assert execution.status == "success"
    assert calls(executor) == ["yum -y update []"]


def test_zypper_locks_reboot_code_and_rerun(run_doc: RunDoc, target: Target) -> None:
    executor = target("opensuse-leap", "zypper", like='"suse opensuse"')
    (executor.root / "etc/zypp").mkdir()
    (executor.root / "etc/zypp/locks").write_text("type: package\nmatch_exact: 1\nsolvable_name: kept\n")
    (executor.root / "fail-once").write_text("update 103\n")
    execution = update(run_doc, executor, "exclude: [kept, kernel-default]")
    assert execution.status == "success", steps(execution)["Update"].failure_message
    assert calls(executor) == [
        "zypper --non-interactive refresh []",
        "zypper --non-interactive addlock kernel-default []",
        "zypper --non-interactive update --auto-agree-with-licenses []",
        "zypper --non-interactive update --auto-agree-with-licenses []",  # 103: zypper updated itself
        "zypper --non-interactive removelock kernel-default []",
    ]
    (executor.root / "calls.log").unlink()
    (executor.root / "fail").write_text("update 102\n")  # reboot needed is still a success
    assert update(run_doc, executor).status == "success"
    (executor.root / "fail").write_text("update 4\n")
    failed = update(run_doc, executor, "include: [vim]")
    assert failed.status == "failed"
    assert "exit status 4" in steps(failed)["Update"].failure_message


def test_apk_pins_excluded_packages_during_the_upgrade(run_doc: RunDoc, target: Target) -> None:
    executor = target("alpine", "apk", folder="/sbin")
    world = "alpine-base\nbusybox\ncurl>8\n"
    (executor.root / "etc/apk").mkdir()
    (executor.root / "etc/apk/world").write_text(world)
    (executor.root / "lib/apk/db").mkdir(parents=True)
    (executor.root / "lib/apk/db/installed").write_text(
        "C:Q1x\nP:curl\nV:8.5.0-r0\nA:x86_64\n\nP:musl\nV:1.2.4-r2\n\nP:busybox\nV:1.36.1-r15\n\n")
    execution = update(run_doc, executor, "exclude: [curl, musl, not-installed]")
    assert execution.status == "success"
    assert calls(executor) == [
        "apk update []",
        "apk upgrade []",
        "  world: alpine-base", "  world: busybox", "  world: curl=8.5.0-r0", "  world: musl=1.2.4-r2",
    ]
    assert (executor.root / "etc/apk/world").read_text() == world  # pins removed afterwards


def test_family_preference_and_fallback(run_doc: RunDoc, target: Target) -> None:
    rocky = target("rocky", "apt-get", "dnf", like='"rhel centos fedora"')
    assert update(run_doc, rocky).status == "success"
    assert calls(rocky) == ["dnf -y update []"]  # ID_LIKE picks dnf over the also-present apt-get


def test_fallback_to_any_manager(run_doc: RunDoc, target: Target) -> None:
    odd = target("debian", "dnf")
    assert update(run_doc, odd).status == "success"
    assert calls(odd) == ["dnf -y update []"]


def test_no_package_manager(run_doc: RunDoc, target: Target) -> None:
    executor = target("plan9")
    execution = update(run_doc, executor)
    assert execution.status == "failed"
    assert "no supported package manager" in steps(execution)["Update"].failure_message


def test_everything_included_is_excluded(run_doc: RunDoc, target: Target) -> None:
    executor = target("debian", "apt-get", "apt-mark")
    execution = update(run_doc, executor, "include: [a]\nexclude: [a]")
    assert execution.status == "success"
    assert calls(executor) == []


def test_timeout_kills_the_manager(run_doc: RunDoc, target: Target) -> None:
    executor = target("fedora", "dnf")
    (executor.root / "fail").write_text("update sleep\n")
    execution = update(run_doc, executor, timeout=1)
    assert execution.status == "failed"
    assert "timed out" in steps(execution)["Update"].failure_message


@pytest.mark.parametrize(("inputs", "message"), [
    ("include: ['-o=APT::Get::Foo']", "not a package name"),
    ("exclude: ['a; rm -rf /']", "not a package name"),
    ("include: curl", "valid list"),
    ("packages: [a]", "unknown input"),
])
def test_invalid_inputs(run_doc: RunDoc, target: Target, inputs: str, message: str) -> None:
    executor = target("debian", "apt-get")
    with pytest.raises(DocumentInvalid, match=message):
        update(run_doc, executor, inputs)
    assert calls(executor) == []
