"""Container recipes built in kiln's sandboxes, read back with real skopeo."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from tests.builds.conftest import component_doc

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")

TEMPLATE = """# a web image
ARG GREETING=hello
FROM {{{ imagebuilder:parentImage }}}
{{{ imagebuilder:environments }}}
ENV APP_HOME=/srv/app \\
    MODE=production
WORKDIR $APP_HOME
RUN echo "$GREETING from $MODE" > greeting.txt
{{{ imagebuilder:components }}}
LABEL team=platform "kiln.test"="yes"
EXPOSE 8080 53/udp
USER nobody
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /srv/app/greeting.txt"]
"""


def _skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def container_recipe(parent_ami):
    from kiln.services.components.resource import create_component
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration
    from kiln.services.container_recipes.resource import create_container_recipe

    component = create_component({
        "name": "web-files", "semanticVersion": "1.0.0", "platform": "Linux",
        "data": component_doc("web-files", "echo built-by-component > /srv/app/component.txt",
                              test="grep -q built-by-component /srv/app/component.txt",
                              validate="test -s /srv/app/greeting.txt"),
    })
    recipe = create_container_recipe({
        "containerType": "DOCKER", "name": "web", "semanticVersion": "1.0.0", "parentImage": parent_ami,
        "components": [{"componentArn": component["componentBuildVersionArn"]}],
        "dockerfileTemplateData": TEMPLATE,
        "targetRepository": {"service": "ECR", "repositoryName": "team/web"},
        "instanceConfiguration": {"image": "ami-0123456789abcdef0"}, "kmsKeyId": "alias/ignored",
    })
    infrastructure = create_infrastructure_configuration({"name": "container-infra", "subnetId": "none"})
    return {"recipe": recipe["containerRecipeArn"],
            "infrastructure": infrastructure["infrastructureConfigurationArn"]}


def _build(arns: dict[str, str]) -> dict:
    from kiln.services.builds.container import create_and_build_container

    return create_and_build_container(recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"])


def test_a_container_recipe_builds_an_oci_image_skopeo_reads(container_recipe, tmp_path: Path) -> None:
    from kiln.services.builds import records

    image = _build(container_recipe)
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    assert image["type"] == "DOCKER" and image["containerRecipe"]["arn"] == container_recipe["recipe"]
    [container] = image["outputResources"]["containers"]
    [uri] = container["imageUris"]
    assert container["region"] == "local" and uri.endswith(":team/web:1.0.0-1")
    inspected = json.loads(_skopeo("inspect", "--config", uri))
    config = inspected["config"]
    assert "APP_HOME=/srv/app" in config["Env"] and "MODE=production" in config["Env"]
    assert not any(entry.startswith("GREETING=") for entry in config["Env"])  # a build argument only
    assert config["Entrypoint"] == ["/bin/sh", "-c"] and config["Cmd"] == ["cat /srv/app/greeting.txt"]
    assert config["WorkingDir"] == "/srv/app" and config["User"] == "nobody"
    assert config["Labels"] == {"team": "platform", "kiln.test": "yes"}
    assert set(config["ExposedPorts"]) == {"8080/tcp", "53/udp"}
    archive = tmp_path / "web.tar"
    _skopeo("copy", uri, f"docker-archive:{archive}:team/web:1.0.0-1")
    files = _files_of_archive(archive)
    assert files["srv/app/greeting.txt"] == b"hello from production\n"
    assert files["srv/app/component.txt"] == b"built-by-component\n"
    steps = [(s["name"], s["status"]) for s in records.list_steps(image["arn"])]
    assert ("ApplyBuildComponents", "COMPLETED") in steps and ("ApplyTestComponents", "COMPLETED") in steps
    assert ("RunLine8", "COMPLETED") in steps and ("DistributeContainerImage", "COMPLETED") in steps
    from kiln.store.api import fsck

    assert fsck("local").ok


def _files_of_archive(archive: Path) -> dict[str, bytes]:
    """The files of a docker-archive's layers, upper layers over lower ones."""
    files: dict[str, bytes] = {}
    with tarfile.open(archive) as outer:
        manifest = json.loads(outer.extractfile("manifest.json").read())  # type: ignore[union-attr]
        for name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(name)) as layer:  # type: ignore[arg-type]
                for member in layer.getmembers():
                    if member.isfile():
                        files[member.name.removeprefix("./")] = layer.extractfile(member).read()  # type: ignore[union-attr]
    return files


def test_the_same_recipe_built_twice_gives_the_same_manifest(container_recipe) -> None:
    first = _build(container_recipe)
    second = _build(container_recipe)
    digests = [json.loads(_skopeo("inspect", "--raw", image["outputResources"]["containers"][0]["imageUris"][0]))
               for image in (first, second)]
    assert second["arn"].endswith("/1.0.0/2")
    assert digests[0] == digests[1]
    uris = [image["outputResources"]["containers"][0]["imageUris"][0] for image in (first, second)]
    first_digest, second_digest = (_skopeo("inspect", "--format", "{{.Digest}}", uri) for uri in uris)
    assert first_digest.startswith("sha256:") and first_digest == second_digest


def _child_recipe(name: str, parent: str, template: str, component: str) -> str:
    from kiln.services.container_recipes.resource import create_container_recipe

    return create_container_recipe({
        "containerType": "DOCKER", "name": name, "semanticVersion": "1.0.0", "parentImage": parent,
        "components": [{"componentArn": component}], "dockerfileTemplateData": template,
        "targetRepository": {"service": "ECR", "repositoryName": name},
    })["containerRecipeArn"]


def test_parents_by_oci_ref_and_by_image_arn_pass_on_their_config(container_recipe, kiln) -> None:
    from kiln.services.components.resource import create_component

    first = _build(container_recipe)
    component = create_component({"name": "noop", "semanticVersion": "1.0.0", "platform": "Linux",
                                  "data": component_doc("noop", "true")})["componentBuildVersionArn"]
    template = ("FROM {{{ imagebuilder:parentImage }}}\nRUN test -f /srv/app/component.txt\n"
                "{{{ imagebuilder:components }}}\nENV EXTRA=1\n")
    by_ref = _child_recipe("by-ref", "oci:team/web:1.0.0-1", template, component)
    by_arn = _child_recipe("by-arn", first["arn"].rsplit("/", 2)[0] + "/x.x.x", template, component)
    for recipe in (by_ref, by_arn):
        done = kiln("image", "create", "--recipe", recipe, "--infrastructure", container_recipe["infrastructure"])
        assert done.exit_code == 0, done.stderr
        arn, _, table = done.stdout.partition("\n")
        [uri] = [word for word in table.split() if word.startswith("oci:")]
        assert arn.endswith("/1.0.0/1") and uri.endswith(":1.0.0-1")
        config = json.loads(_skopeo("inspect", "--config", uri))["config"]
        assert "APP_HOME=/srv/app" in config["Env"] and "EXTRA=1" in config["Env"]
        assert config["Cmd"] == ["cat /srv/app/greeting.txt"] and config["User"] == "nobody"


def test_a_failing_run_fails_the_image_and_leaves_nothing(container_recipe) -> None:
    from kiln.runtime.instances import list_instances
    from kiln.services.builds import records
    from kiln.services.builds.container import ContainerBuildFailed, create_and_build_container
    from kiln.services.components.resource import create_component
    from kiln.store.layout import Layout

    component = create_component({"name": "noop", "semanticVersion": "1.0.0", "platform": "Linux",
                                  "data": component_doc("noop", "true")})["componentBuildVersionArn"]
    template = "FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:components }}}\nRUN echo no; exit 4\n"
    parent = records.get_image(_build(container_recipe)["arn"])["outputResources"]["containers"][0]["imageUris"][0]
    recipe = _child_recipe("broken", "oci:" + parent.rsplit(":", 2)[-2] + ":" + parent.rsplit(":", 1)[-1],
                           template, component)
    with pytest.raises(ContainerBuildFailed) as failed:
        create_and_build_container(recipe_arn=recipe, infrastructure_arn=container_recipe["infrastructure"])
    assert "dockerfileTemplateData:3: RUN echo no; exit 4 exited with code 4" in failed.value.message
    [image] = [i for i in records.list_images() if ":image/broken/" in i["arn"]]
    assert image["state"]["status"] == "FAILED" and image["outputResources"]["containers"] == []
    assert not any(ref.startswith("broken:") for ref in Layout.for_region("local").refs())
    assert not list_instances(states=("pending", "running", "stopping", "stopped"))
