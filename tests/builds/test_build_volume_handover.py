"""The build instance's root volume becomes the new AMI's top layer dir instead of being deleted."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.store.conftest import signature

from kiln.services.builds.workflow import create_and_build
from kiln.store import api, unpack

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")


@pytest.fixture
def extractions(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    original = unpack.extract_stream

    def counting(stream: Any, dest: Path, **kwargs: Any) -> None:
        calls.append(dest)
        original(stream, dest, **kwargs)

    monkeypatch.setattr(unpack, "extract_stream", counting)
    return calls


def test_the_test_instance_launches_on_the_handed_over_volume(
    make_recipe: Any, extractions: list[Path], tmp_path: Path
) -> None:
    arns = make_recipe(
        "echo built > /etc/motd\nrm /etc/remove-me\nmkdir -p /opt/app && ln -s ../app /opt/app/self\n"
        "touch /opt/app/a && ln /opt/app/a /opt/app/b",
        test="test ! -e /etc/remove-me && grep -q built /etc/motd",
    )
    image = create_and_build(recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"],
                             distribution_arn=arns["distribution"])
    assert image["state"]["status"] == "AVAILABLE"
    assert extractions == []  # neither the test instance nor anything else unpacked the new layer
    ami = image["outputResources"]["amis"][0]["image"]
    top = api.layer_dirs(ami)[-1]
    shutil.move(str(top), tmp_path / "handed-over")
    assert api.layer_dirs(ami)[-1] == top  # unpacked from the blob this time
    assert len(extractions) == 1
    assert signature(tmp_path / "handed-over") == signature(top)


def test_a_volume_that_ran_again_since_its_capture_is_deleted(parent_ami: str) -> None:
    from kiln.runtime import instances
    from kiln.runtime.exec import exec_in
    from kiln.services.builds import steps
    from kiln.services.ec2.instances import run_instance

    instance = run_instance(parent_ami, owned=True)
    exec_in(instance.id, ["sh", "-c", "echo one > /etc/motd"])
    captured = steps.create_ami(instance.id, name="captured", description=None, tags={})
    instances.start(instance.id)
    exec_in(instance.id, ["sh", "-c", "echo two > /etc/motd"])
    instances.stop(instance.id)
    steps.terminate_build(instance.id, captured, region="local")
    assert instances.get(instance.id).state == "terminated"
    assert not instances.get(instance.id).dir.exists()
    assert (api.layer_dirs(captured.ami)[-1] / "etc" / "motd").read_text() == "one\n"
