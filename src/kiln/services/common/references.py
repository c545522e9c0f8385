"""Who references whom: deleting a resource another one uses is refused, naming the user.

The finders below are the whole reference graph, one per (used type, using family), each a query of
the database tables: recipes use components; pipelines use recipes, infrastructure and distribution
configurations; a pipeline is in use while one of its builds runs. They read tables, never the
families' modules, so any family can ask without importing the families above it.
``register_reference_finder`` adds a finder for a new resource type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kiln.db.tables.images import ImageBuild
from kiln.db.tables.pipelines import ImagePipelineRow
from kiln.db.tables.resources import ImageRecipeRow
from kiln.errors import InUse
from kiln.model.arn import parse_arn
from kiln.model.states import ACTIVE_BUILD_STATES
from kiln.model.versions import Version, VersionFilter
from kiln.services.common.versioned import version_rows as _version_rows

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kiln.model.arn import Arn

ReferenceFinder = Callable[["Session", "Arn"], list[str]]


def _recipes_using_component(db: Session, component: Arn) -> list[str]:
    """Recipes whose reference would no longer resolve without this component build."""
    from kiln.db.tables.resources import ComponentRow

    target_version = component.exact_version
    others: list[ComponentRow] | None = None
    users = []
    for recipe in _version_rows(db, ImageRecipeRow, None, None):
        for entry in recipe.components:
            reference = parse_arn(entry["componentArn"])
            if reference.account != component.account or reference.name != component.name:
                continue
            if reference.build is not None and reference.build != component.build:
                continue
            if target_version is None or not (reference.version or VersionFilter((None,) * 3)).matches(
                target_version
            ):
                continue
            if others is None:
                from sqlalchemy import select

                others = [
                    row
                    for row in db.scalars(
                        select(ComponentRow).where(
                            ComponentRow.account == component.account, ComponentRow.arn_name == component.name
                        )
                    )
                    if row.arn != str(component)
                ]
            still = [
                row
                for row in others
                if (reference.version or VersionFilter((None,) * 3)).matches(
                    Version(row.major, row.minor, row.patch)
                )
                and reference.build in (None, row.build)
            ]
            if not still:
                users.append(recipe.arn)
                break
    return users


def _all(db: Session) -> list[ImagePipelineRow]:
    from sqlalchemy import select

    return list(db.scalars(select(ImagePipelineRow)))


def _pipelines_using_recipe(db: Session, recipe: Arn) -> list[str]:
    """Pipelines whose recipe reference would no longer resolve without this recipe version."""
    users = []
    for pipeline in _all(db):
        reference = parse_arn(pipeline.body["imageRecipeArn"])
        if (reference.account, reference.name) != (recipe.account, recipe.name):
            continue
        wanted = reference.version or VersionFilter((None, None, None))
        if recipe.exact_version is None or not wanted.matches(recipe.exact_version):
            continue
        others = [
            row for row in _version_rows(db, ImageRecipeRow, recipe.account, recipe.name)
            if row.arn != str(recipe.without_build()) and wanted.matches(Version(row.major, row.minor, row.patch))
        ]
        if not others:
            users.append(pipeline.arn)
    return users


def _pipelines_using(field: str):  # type: ignore[no-untyped-def]
    def finder(db: Session, arn: Arn) -> list[str]:
        return [row.arn for row in _all(db) if row.body.get(field) == str(arn)]

    return finder


def _running_builds(db: Session, arn: Arn) -> list[str]:
    """A pipeline is in use while one of its builds is running."""
    from sqlalchemy import select

    query = select(ImageBuild.arn).where(
        ImageBuild.pipeline_arn == str(arn), ImageBuild.status.in_(ACTIVE_BUILD_STATES)
    )
    return list(db.scalars(query))


_finders: dict[str, list[ReferenceFinder]] = {
    "component": [_recipes_using_component],
    "image-recipe": [_pipelines_using_recipe],
    "infrastructure-configuration": [_pipelines_using("infrastructureConfigurationArn")],
    "distribution-configuration": [_pipelines_using("distributionConfigurationArn")],
    "image-pipeline": [_running_builds],
}


def register_reference_finder(resource_type: str, finder: ReferenceFinder) -> None:
    """Declare that ``finder`` reports users of resources of ``resource_type``."""
    finders = _finders.setdefault(resource_type, [])
    if finder not in finders:
        finders.append(finder)


def users_of(db: Session, arn: Arn) -> list[str]:
    """ARNs of the resources that use ``arn``."""
    users: list[str] = []
    for finder in _finders.get(arn.resource_type, []):
        users.extend(user for user in finder(db, arn) if user not in users)
    return users


def refuse_if_in_use(db: Session, arn: Arn) -> None:
    users = users_of(db, arn)
    if users:
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise InUse(
            f"{arn} is in use by {shown}",
            hint="delete or change the resources that use it first",
        )
