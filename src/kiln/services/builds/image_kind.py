"""``kiln apply``'s ``Image`` kind: a CreateImage body (CloudFormation's AWS::ImageBuilder::Image) that
starts a build.

As CloudFormation treats an unchanged resource, applying the same document again starts nothing: the
image it started is the answer ("unchanged") while that image is being built or AVAILABLE. Every property
of an Image resource requires replacement, so a changed document (any field, tags included) is a new
build; so is the same document once its image FAILED or was CANCELLED (a failed create leaves nothing
to keep). ``imageScanningConfiguration``, ``workflows``, ``executionRole`` and ``loggingConfiguration`` are
accepted and part of the document's identity; a build runs the ``workflows`` (default: the managed
ones, the container ones for a container recipe; :mod:`kiln.services.builds.workflow`). The build
itself starts once the apply has committed (``kiln apply``: ``build_queue.build_here`` with ``--wait``,
else ``build_queue.build_detached``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiln.model.image_request import CreateImageRequest
from kiln.services.common.kinds import ApplyContext, KindHandler, Ref, ref_from_arn
from kiln.services.common.unit import content_hash

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def document_hash(request: CreateImageRequest) -> str:
    return content_hash({key: value for key, value in request.dump().items() if key != "clientToken"})


def _identity(request: CreateImageRequest) -> Ref:
    from kiln.model.arn import parse_arn

    recipe = parse_arn(request.imageRecipeArn or request.containerRecipeArn or "", allow_short=True)
    return Ref("image", f"{recipe.name}@{document_hash(request)[:12]}")


def _references(request: CreateImageRequest) -> list[Ref]:
    found = [ref_from_arn(request.infrastructureConfigurationArn, "infrastructure-configuration")]
    if request.imageRecipeArn:
        found.append(ref_from_arn(request.imageRecipeArn, "image-recipe"))
    if request.containerRecipeArn:
        found.append(ref_from_arn(request.containerRecipeArn, "container-recipe"))
    if request.distributionConfigurationArn:
        found.append(ref_from_arn(request.distributionConfigurationArn, "distribution-configuration"))
    from kiln.services.workflows.resource import workflow_references

    return found + workflow_references(request.workflows)


def _apply(db: Session, request: CreateImageRequest, ctx: ApplyContext, where: str) -> tuple[str, str]:
    from sqlalchemy import select

    from kiln.db.tables.images import ImageBuild
    from kiln.services.builds import records
    from kiln.services.builds.intake import record_image
    from kiln.services.common.owners import in_region

    digest = document_hash(request)
    started = db.scalars(
        select(ImageBuild).where(ImageBuild.apply_hash == digest, ImageBuild.account == ctx.account,
                                 ImageBuild.status.not_in(("FAILED", "CANCELLED")))
        .order_by(ImageBuild.date_created.desc())
    ).all()
    for row in started:
        if in_region(row.arn, ctx.region):
            return row.arn, "unchanged"
    tests = request.imageTestsConfiguration
    options: dict[str, Any] = {
        "infrastructure_arn": request.infrastructureConfigurationArn,
        "distribution_arn": request.distributionConfigurationArn,
        "tests_enabled": True if tests is None or tests.imageTestsEnabled is None else tests.imageTestsEnabled,
        "tests_timeout_minutes": (tests.timeoutMinutes if tests else None) or 720,
        "enhanced_metadata": True if request.enhancedImageMetadataEnabled is None
        else request.enhancedImageMetadataEnabled,
        "tags": request.tags, "region": ctx.region, "account": ctx.account,
    }
    workflows = [entry.dump() for entry in request.workflows] if request.workflows else None
    options.update(workflows=workflows, execution_role=request.executionRole)
    container = bool(request.containerRecipeArn)
    arn = record_image(recipe_arn=request.containerRecipeArn or request.imageRecipeArn or "", container=container,
                       **options)
    records.update(arn, apply_hash=digest)
    return arn, "created"


APPLY_KIND = KindHandler("Image", CreateImageRequest, _identity, _references, _apply)
