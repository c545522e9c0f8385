from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.db.engine import reset_engines
from kiln.services.startup import install as install_startup

# The wiring every kiln entry point does: recovery and managed components on first database use.
install_startup()


@pytest.fixture(autouse=True)
def kiln_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own KILN_HOME (and so its own database and image store)."""
    home = tmp_path / "kiln-home"
    home.mkdir()
    monkeypatch.setenv("KILN_HOME", str(home))
    monkeypatch.delenv("KILN_DATABASE_URL", raising=False)
    reset_engines()
    yield home
    reset_engines()


@pytest.fixture(autouse=True)
def _no_instance_outlives_its_test(kiln_home: Path) -> Iterator[None]:
    """Whatever a test leaves (also when it fails): terminated, so no mount or process leaks."""
    yield
    from kiln.runtime import overlay, sandbox

    if (kiln_home / "kiln.db").exists():
        from kiln.runtime import instances, recovery

        try:
            recovery.recover()
            for instance in instances.list_instances(states=recovery.LIVE_STATES):
                instances.terminate(instance.id, force=True)
        except Exception as error:
            print(f"instance clean-up failed, killing what is left: {error!r}")
    for mount_point in overlay.mounts_under(kiln_home):  # last resort, without the database
        for monitor in sandbox.find_monitors(mount_point):
            sandbox.kill(monitor)
        overlay.unmount(mount_point)


def needs_root() -> pytest.MarkDecorator:
    return pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and overlayfs")
