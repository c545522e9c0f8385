"""kiln's managed components run in a sandbox over the Debian bookworm parent (Debian registry only)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiln.errors import InvalidInput
from kiln.services.builds.steps import run_document
from kiln.services.components.managed import managed_document

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)"),
    pytest.mark.network,
    pytest.mark.slow,
]

CHRONY_SETUP = """name: chrony-setup
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: InstallChrony
        action: ExecuteBash
        inputs:
          commands:
            - |
              DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chrony
              mkdir -p /etc/chrony/sources.d
              echo 'server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4' > /etc/chrony/sources.d/aws.sources
"""

TAMPER = """name: tamper
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: AllowEmptyPasswords
        action: ExecuteBash
        inputs:
          commands:
            - sed -i 's/^PermitEmptyPasswords no/PermitEmptyPasswords yes/' /etc/ssh/sshd_config
"""


@pytest.fixture
def debian(bootstrap_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """An instance over bookworm minbase with the host's network; ``run(document, phases, **params)``
    runs one document on it as a build does and returns its failure message ('' when it succeeded)."""
    from kiln.runtime import instances
    from kiln.runtime.executor import InstanceExecutor
    from kiln.store import api

    monkeypatch.setenv("KILN_BOOTSTRAP_CACHE", str(bootstrap_cache))
    ami = api.bootstrap_image("debian:bookworm")
    instance = instances.launch(api.layer_dirs(ami), image_id=ami, network="host")
    runs = iter(range(1000))

    def run(document: str, phases: tuple[str, ...], **parameters: str) -> str:
        ok, message = run_document(
            InstanceExecutor(instance.id), document, name=f"run-{next(runs)}", phases=phases,
            parameters=parameters, log_dir=tmp_path / "logs", working_directory="/tmp",
        )
        return "" if ok else message

    try:
        yield run
    finally:
        instances.terminate(instance.id, force=True)


def test_managed_components_on_the_debian_parent(debian: Callable[..., str]) -> None:
    for name in ("python-3-linux", "aws-cli-version-2-linux", "docker-ce-linux"):
        assert debian(managed_document(name), ("build", "validate")) == "", name

    chrony = managed_document("chrony-time-configuration-test")
    assert "chrony is not installed" in debian(chrony, ("test",))
    assert debian(CHRONY_SETUP, ("build",)) == ""
    assert debian(chrony, ("test",)) == ""

    assert debian(managed_document("reboot-test-linux"), ("test",)) == ""

    assert debian(managed_document("stig-build-linux-low"), ("build", "validate")) == ""
    assert debian(managed_document("stig-build-linux-medium"), ("build", "validate"),
                  SetDoDConsentBanner="Yes") == ""
    assert debian(managed_document("stig-build-linux-high"), ("build", "validate")) == ""
    with pytest.raises(InvalidInput, match="'Maybe' is not one of the allowed values"):
        debian(managed_document("stig-build-linux-medium"), ("build",), SetDoDConsentBanner="Maybe")
    # the validate phase checks what the build set: a setting changed afterwards fails it
    assert debian(TAMPER, ("build",)) == ""
    failure = debian(managed_document("stig-build-linux-low"), ("validate",))
    assert "step CheckSettings failed" in failure
    assert "/etc/ssh/sshd_config: expected 'PermitEmptyPasswords no'" in failure
