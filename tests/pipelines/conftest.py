"""Real resources in the test's database, and a stand-in for the build engine.

``StandInRunner`` replaces only the build workflow (``kiln.services.builds.workflow.Build``, whose engine
is wired on main): it records how the pipeline called it, writes the build inputs the way the real build
does (``resolved_inputs`` from the real resolution functions) and ends the image AVAILABLE or FAILED.
Everything else (resources, images, executions, decisions) is the real code over the real database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from kiln.services.builds import records as images
from kiln.services.components.resource import create_component, resolve_component
from kiln.services.configurations.infrastructure import create_infrastructure_configuration
from kiln.services.pipelines.resource import create_image_pipeline
from kiln.services.recipes.resource import create_image_recipe

SELF = "arn:aws:imagebuilder:local:123456789012"
AMI = "ami-0123456789abcdef0"
DOC = """\
name: {name}
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Hello
        action: ExecuteBash
        inputs:
          commands:
            - echo {name} {version}
"""


def component(name: str, version: str) -> str:
    body = {"name": name, "semanticVersion": version, "platform": "Linux",
            "data": DOC.format(name=name, version=version)}
    return create_component(body)["componentBuildVersionArn"]


def recipe(name: str, version: str, parent: str, components: list[str]) -> str:
    body = {"name": name, "semanticVersion": version, "parentImage": parent,
            "components": [{"componentArn": arn} for arn in components]}
    return create_image_recipe(body)["imageRecipeArn"]


def infrastructure(name: str = "build-infra") -> str:
    return create_infrastructure_configuration({"name": name})["infrastructureConfigurationArn"]


def pipeline(name: str, recipe_arn: str, infrastructure_arn: str, **extra: Any) -> str:
    body = {"name": name, "imageRecipeArn": recipe_arn, "infrastructureConfigurationArn": infrastructure_arn,
            **extra}
    return create_image_pipeline(body)["imagePipelineArn"]


def available_image(name: str, version: str, ami: str) -> str:
    """An AVAILABLE image row with one output AMI (what a finished build leaves)."""
    arn = images.create_image(name=name, version=version, recipe_arn=f"{SELF}:image-recipe/{name}/{version}",
                              infrastructure_arn=f"{SELF}:infrastructure-configuration/x")
    images.finish_available(arn, [{"region": "local", "image": ami, "name": name}])
    return arn


@dataclass
class StandInRunner:
    """Stand-in for the build workflow: records calls, writes resolved inputs, ends AVAILABLE/FAILED."""

    outcomes: list[str] = field(default_factory=list)  # consumed per call; default AVAILABLE
    calls: list[dict[str, Any]] = field(default_factory=list)
    during: Any = None  # called while the image is BUILDING

    def __call__(self, image_arn: str, *, pipeline_version: str, progress: Any) -> dict[str, Any]:
        from kiln.db.engine import session
        from kiln.model.parent import parse_parent_image
        from kiln.services.pipelines.dependencies import newest_parent_ami
        from kiln.services.recipes.resource import find_recipe

        row = images.get_row(image_arn)
        self.calls.append({"image": image_arn, "pipeline_version": pipeline_version, "tags": dict(row.tags),
                           "pipeline_arn": row.pipeline_arn})
        images.set_status(image_arn, "BUILDING")
        with session() as db:
            found = find_recipe(db, row.recipe_arn)
            parent, entries = found.parent_image, list(found.components)
            components = [{"arn": resolve_component(e["componentArn"], db=db).arn} for e in entries]
        parsed = parse_parent_image(parent)
        kind = parsed.kind
        if kind == "ssm":
            from kiln.services.builds.plan import ssm_parent

            parent_ami = ssm_parent(parsed.value, region="local", account=row.arn.split(":")[4])[0]
        else:
            parent_ami = newest_parent_ami(parent) if kind == "image" else (parent if kind == "ami" else
                                                                                   "ami-00000000000000b00")
        images.update(image_arn, resolved_inputs={
            "recipe_arn": row.recipe_arn, "parent_source": parent, "parent_ami": parent_ami,
            "components": components, "region": "local",
        })
        if self.during is not None:
            self.during(image_arn)
        outcome = self.outcomes.pop(0) if self.outcomes else "AVAILABLE"
        if outcome == "AVAILABLE":
            images.finish_available(image_arn, [{"region": "local", "image": "ami-0000000000000a" +
                                                 f"{row.build_number:03d}", "name": row.name}])
            return images.get_image(image_arn)
        images.set_status(image_arn, "FAILED", "stand-in build failed")
        raise RuntimeError("stand-in build failed")


@pytest.fixture
def runner() -> StandInRunner:
    return StandInRunner()
