"""``kiln apply`` with an Image document: the build starts (in a worker of its own, or here with --wait);
the same document applied again starts nothing while its image stands; a FAILED one fails --wait."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from tests.builds.conftest import component_doc

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")


def _file(tmp_path: Path, parent_ami: str, build: str, *, name: str = "web", container: bool = False) -> Path:
    documents: list[dict] = [
        {"kind": "Component", "name": f"{name}-setup", "semanticVersion": "1.0.0", "platform": "Linux",
         "data": component_doc(f"{name}-setup", build)},
        {"kind": "InfrastructureConfiguration", "name": f"{name}-infra", "subnetId": "none"},
    ]
    image: dict = {"kind": "Image", "infrastructureConfigurationArn": f"infrastructure-configuration/{name}-infra",
                   "imageTestsConfiguration": {"imageTestsEnabled": False},
                   "imageScanningConfiguration": {"imageScanningEnabled": False}, "tags": {"team": "platform"}}
    components = [{"componentArn": f"component/{name}-setup/1.0.0"}]
    if container:
        documents.append({"kind": "ContainerRecipe", "containerType": "DOCKER", "name": name,
                          "semanticVersion": "1.0.0", "parentImage": parent_ami, "components": components,
                          "dockerfileTemplateData": "FROM {{{ imagebuilder:parentImage }}}\n"
                                                    "{{{ imagebuilder:components }}}\nCMD [\"sh\"]\n",
                          "targetRepository": {"service": "ECR", "repositoryName": name}})
        image["containerRecipeArn"] = f"container-recipe/{name}/1.0.0"
    else:
        documents.append({"kind": "ImageRecipe", "name": name, "semanticVersion": "1.0.0", "parentImage": parent_ami,
                          "components": components})
        image["imageRecipeArn"] = f"image-recipe/{name}/1.0.0"
    documents.insert(0, image)  # dependencies come first whatever the file order
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path


def _image_line(stdout: str) -> tuple[str, str]:
    [line] = [line for line in stdout.splitlines() if ":image/" in line]
    arn, status = line.split()
    return arn, status


def test_an_image_document_builds_in_the_background_and_is_not_rebuilt(kiln, tmp_path, parent_ami) -> None:
    from kiln.services import build_queue
    from kiln.services.builds import records

    path = _file(tmp_path, parent_ami, "echo built > /etc/built")
    first = kiln("apply", "-f", str(path))
    assert first.exit_code == 0, first.stderr
    arn, status = _image_line(first.stdout)
    assert status == "created" and arn.endswith(":image/web/1.0.0/1")
    image = build_queue.wait_for(arn, poll_seconds=0.2)  # a worker process of its own builds it
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    assert image["tags"] == {"team": "platform"}
    again = kiln("apply", "-f", str(path))
    assert again.exit_code == 0, again.stderr
    assert _image_line(again.stdout) == (arn, "unchanged")
    assert [i["arn"] for i in records.list_images()] == [arn]


def test_wait_exits_non_zero_for_a_failed_build_and_a_failed_image_is_built_again(kiln, tmp_path, parent_ami) -> None:
    from kiln.services.builds import records

    path = _file(tmp_path, parent_ami, "exit 3", name="broken")
    failed = kiln("apply", "-f", str(path), "--wait")
    assert failed.exit_code == 1
    arn, status = _image_line(failed.stdout)
    assert status == "created" and f"image {arn} FAILED" in failed.stderr
    assert records.get_image(arn)["state"]["status"] == "FAILED"
    again = kiln("apply", "-f", str(path), "--wait")
    assert again.exit_code == 1
    second, status = _image_line(again.stdout)
    assert status == "created" and second.endswith("/1.0.0/2")


def test_wait_on_a_container_image_document(kiln, tmp_path, parent_ami) -> None:
    path = _file(tmp_path, parent_ami, "echo built > /built", name="svc", container=True)
    done = kiln("apply", "-f", str(path), "--wait", "--output", "json")
    assert done.exit_code == 0, done.stderr
    [image] = [entry for entry in json.loads(done.stdout)["resources"] if entry["kind"] == "Image"]
    assert image["status"] == "created" and image["imageState"]["status"] == "AVAILABLE"
