"""Real builds over a busybox parent AMI: the store, the runtime and the engine, no stand-ins."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")


@pytest.fixture
def parent_ami(busybox_copy) -> str:
    from kiln.store.api import import_rootfs

    root = busybox_copy("busybox")
    # ExecuteBash runs bash; busybox's ash stands in for it in this tiny parent image.
    bash = root / "bin" / "bash"
    bash.write_text('#!/bin/busybox sh\nexec /bin/busybox sh "$@"\n')
    bash.chmod(0o755)
    (root / "etc" / "remove-me").write_text("parent file\n")
    return import_rootfs(root, name="busybox-parent")


def component_doc(name: str, build: str, test: str | None = None, validate: str | None = None) -> str:
    phases = [f"""  - name: build
    steps:
      - name: Build
        action: ExecuteBash
        inputs:
          commands:
            - |
{_indent(build)}"""]
    if validate:
        phases.append(f"""  - name: validate
    steps:
      - name: Validate
        action: ExecuteBash
        inputs:
          commands:
            - |
{_indent(validate)}""")
    if test:
        phases.append(f"""  - name: test
    steps:
      - name: Test
        action: ExecuteBash
        inputs:
          commands:
            - |
{_indent(test)}""")
    return f"name: {name}\nschemaVersion: 1.0\nphases:\n" + "\n".join(phases) + "\n"


def _indent(script: str) -> str:
    return "\n".join("              " + line for line in script.strip().splitlines())


@pytest.fixture
def make_recipe(parent_ami: str) -> Iterator[Any]:
    from kiln.services.components.resource import create_component
    from kiln.services.configurations.distribution import create_distribution_configuration
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration
    from kiln.services.recipes.resource import create_image_recipe

    def make(
        build: str,
        *,
        test: str | None = None,
        validate: str | None = None,
        name: str = "web",
        version: str = "1.0.0",
        keep_on_failure: bool = False,
        recipe_fields: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        component = create_component({
            "name": f"{name}-setup", "semanticVersion": version, "platform": "Linux",
            "data": component_doc(f"{name}-setup", build, test, validate),
        })
        recipe = create_image_recipe({
            "name": name, "semanticVersion": version, "parentImage": parent_ami,
            "components": [{"componentArn": component["componentBuildVersionArn"]}],
            **(recipe_fields or {}),
        })
        infrastructure = create_infrastructure_configuration({
            "name": f"{name}-infra-{version.replace('.', '-')}", "subnetId": "none",
            "terminateInstanceOnFailure": not keep_on_failure,
        })
        distribution = create_distribution_configuration({
            "name": f"{name}-dist-{version.replace('.', '-')}",
            "distributions": [{"region": "local", "amiDistributionConfiguration": {
                "name": f"{name}-{{{{ imagebuilder:buildDate }}}}-{{{{ imagebuilder:buildVersion }}}}",
                "amiTags": {"team": "platform"},
                "launchPermission": {"userIds": ["210987654321"]},
            }}],
        })
        return {
            "recipe": recipe["imageRecipeArn"],
            "infrastructure": infrastructure["infrastructureConfigurationArn"],
            "distribution": distribution["distributionConfigurationArn"],
        }

    yield make
    from kiln.runtime import instances

    for instance in instances.list_instances(states=("pending", "running", "stopping", "stopped")):
        instances.terminate(instance.id, force=True)
