"""S3Download and S3Upload in a VM build: kiln's runner in the guest has no boto3 and no credentials;
its S3 steps go through the host's S3 relay (kiln.runtime.vm_s3_relay, QEMU's guestfwd to
169.254.169.254:8773), which uses the build's network policy and the AWS profile the infrastructure
configuration's instance profile maps to, against the session's moto server. One build downloads an
object and a prefix and uploads a file and a folder; a build whose configuration says ``subnetId none``
fails its S3Download with a sandbox build's refusal. The first build also reboots from inside a nested
ExecuteDocument and resumes there. Never skipped (TCG when KVM is not usable)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.vm_support import BuiltImage, module_home

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)"),
    pytest.mark.network,
    pytest.mark.slow,
]

OWNER = "123456789012"  # moto's account
TRANSFERS = f"""
name: vm-s3
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Prepare
        action: ExecuteBash
        inputs:
          commands:
            - mkdir -p /opt/s3/mirror /opt/s3/up/sub
            - printf A > /opt/s3/up/a.txt
            - printf B > /opt/s3/up/sub/b.txt
            - echo ran >> /opt/s3/prepare-runs
            - |
              cat > /opt/s3/nested.yaml <<'EOF'
              name: nested
              schemaVersion: 1.0
              phases:
                - name: build
                  steps:
                    - name: NestedBefore
                      action: ExecuteBash
                      inputs:
                        commands:
                          - echo ran >> /opt/s3/nested-before
                          - cat /proc/sys/kernel/random/boot_id > /opt/s3/boot-before
                    - name: NestedReboot
                      action: Reboot
                    - name: NestedAfter
                      action: ExecuteBash
                      inputs:
                        commands:
                          - echo ran >> /opt/s3/nested-after
                          - cat /proc/sys/kernel/random/boot_id > /opt/s3/boot-after
              EOF
      - name: Down
        action: S3Download
        inputs:
          - source: s3://vm-bucket/big.bin
            destination: /opt/s3/big.bin
            expectedBucketOwner: '{OWNER}'
          - source: s3://vm-bucket/p/*
            destination: /opt/s3/mirror
      - name: Up
        action: S3Upload
        inputs:
          - source: /opt/s3/big.bin
            destination: s3://vm-bucket/back/big.bin
            expectedBucketOwner: '{OWNER}'
          - source: /opt/s3/up
            destination: s3://vm-bucket/tree/
            recurse: true
      - name: Nest
        action: ExecuteDocument
        inputs:
          document: /opt/s3/nested.yaml
      - name: AfterNest
        action: ExecuteBash
        inputs:
          commands:
            - echo ran >> /opt/s3/after-nest
"""
REFUSED = """
name: vm-s3-refused
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Fetch
        action: S3Download
        inputs:
          - source: s3://vm-bucket/big.bin
            destination: /tmp/big.bin
"""


@pytest.fixture(scope="module")
def vm_home(shared_vm_image: BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(KILN_HOME of this module's own, the bootable parent AMI); every VM left is terminated."""
    for home in module_home(shared_vm_image, tmp_path_factory, "vm-s3"):
        yield home, shared_vm_image.ami


@pytest.fixture
def builds(vm_home: tuple[Path, str], s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The module's KILN_HOME, its instance profile ``vm-builder`` mapped to the AWS profile ``builder``
    (credentials moto takes), the test bucket; yields the test's S3 client."""
    from kiln.db.engine import reset_engines

    home, _ = vm_home
    credentials = tmp_path / "credentials"
    credentials.write_text("[builder]\naws_access_key_id = BUILDERKEY\naws_secret_access_key = secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("KILN_HOME", str(home))
    (home / "instance-profiles.yaml").write_text("vm-builder: builder\n")
    reset_engines()
    s3.create_bucket(Bucket="vm-bucket")
    yield s3
    reset_engines()


def _inputs(name: str, parent: str, document: str, infrastructure: dict[str, Any]) -> tuple[str, str]:
    from kiln.services.components.resource import create_component
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration
    from kiln.services.recipes.resource import create_image_recipe

    component = create_component({"name": name, "semanticVersion": "1.0.0", "platform": "Linux",
                                  "data": document})["componentBuildVersionArn"]
    recipe = create_image_recipe({"name": name, "semanticVersion": "1.0.0", "parentImage": parent,
                                  "components": [{"componentArn": component}], "workingDirectory": "/tmp"})
    configuration = create_infrastructure_configuration({
        "name": f"{name}-infra", "instanceTypes": ["t3.micro"], "resourceTags": {"kiln:vm": "true"},
        **infrastructure})
    return recipe["imageRecipeArn"], configuration["infrastructureConfigurationArn"]


def _bucket(s3: Any) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket="vm-bucket").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket="vm-bucket", Key=o["Key"])["Body"].read() for o in listed}


def test_s3_steps_in_a_vm_go_through_the_hosts_relay(builds: Any, vm_home: tuple[Path, str]) -> None:
    from kiln.services.builds.workflow import create_and_build
    from kiln.store import api
    from kiln.store.layer_view import LayerView

    big = os.urandom(3 * (1 << 20) + 5)
    objects = {"big.bin": big, "p/x.txt": b"X", "p/q/y.txt": b"Y", "other/z.txt": b"Z"}
    for key, body in objects.items():
        builds.put_object(Bucket="vm-bucket", Key=key, Body=body)
    recipe, infrastructure = _inputs("vm-s3", vm_home[1], TRANSFERS, {
        "instanceProfileName": "vm-builder", "tags": {"kiln:HostLocalNetwork": "allow"}})  # moto is on loopback
    lines: list[str] = []
    image = create_and_build(recipe_arn=recipe, infrastructure_arn=infrastructure, progress=lines.append)
    assert image["state"]["status"] == "AVAILABLE", (image["state"], lines[-30:])
    assert "      step Down [S3Download]: success" in lines, lines
    assert _bucket(builds) == {**objects, "back/big.bin": big, "tree/a.txt": b"A", "tree/sub/b.txt": b"B"}
    view = LayerView(api.layer_dirs(image["outputResources"]["amis"][0]["image"], "local"))
    assert view.read_bytes("/opt/s3/big.bin") == big
    assert view.read_bytes("/opt/s3/mirror/x.txt") == b"X" and view.read_bytes("/opt/s3/mirror/q/y.txt") == b"Y"
    assert view.read_bytes("/opt/s3/mirror/z.txt") is None
    # the nested document's Reboot rebooted the guest and the run resumed inside that document: no step
    # done before it ran again (S3 steps included), the rest of both documents ran once
    rebooting = (f"{_build_vm(image['arn'])}: rebooting for step build/NestedReboot in /opt/s3/nested.yaml "
                 "(from step build/Nest), then resuming the document")
    assert rebooting in [line.strip() for line in lines], [line for line in lines if "reboot" in line]
    for name in ("prepare-runs", "nested-before", "nested-after", "after-nest"):
        assert view.read_bytes(f"/opt/s3/{name}") == b"ran\n", name
    assert view.read_bytes("/opt/s3/boot-before") != view.read_bytes("/opt/s3/boot-after")


def _build_vm(image_arn: str) -> str:
    from kiln.runtime import instances

    [build] = [i.id for i in instances.list_instances() if i.tags.get("kiln:ImageArn") == image_arn
               and i.tags.get("kiln:Purpose") == "build"]
    return build


def test_a_vm_build_without_a_network_is_refused_s3(builds: Any, vm_home: tuple[Path, str]) -> None:
    from kiln.services.builds import records as images
    from kiln.services.builds.workflow import BuildFailed, create_and_build

    builds.put_object(Bucket="vm-bucket", Key="big.bin", Body=b"data")
    recipe, infrastructure = _inputs("vm-s3-refused", vm_home[1], REFUSED,
                                     {"subnetId": "none", "instanceProfileName": "vm-builder"})
    with pytest.raises(BuildFailed):
        create_and_build(recipe_arn=recipe, infrastructure_arn=infrastructure)
    [image] = [i for i in images.list_images() if i["name"] == "vm-s3-refused"]
    reason = image["state"]["reason"]
    assert ("step Fetch failed: s3://vm-bucket/big.bin: refused: 127.0.0.1: the instance has no network (its "
            "infrastructure configuration says subnetId: none)") in reason, reason
