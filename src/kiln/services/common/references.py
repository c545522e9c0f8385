"""Who references whom: deleting a resource another one uses is refused, naming the user.

The finders below are the whole reference graph, one per (used type, using family), each a query of
the database tables: recipes use components; pipelines use recipes, infrastructure and distribution
configurations; a pipeline is in use while one of its builds runs. They read tables, never the
families' modules, so any family can ask without importing the families above it.
``register_reference_finder`` adds a finder for a new resource type.

AMIs are used by instances (the runtime knows those) and by launch templates: each template's
``$Default`` and ``$Latest`` versions, their ``resolve:ssm:`` image ids resolved through the parameter
tables as a launch would resolve them now (``images_used_by_launch_templates``).
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


def _parameter_values(db: Session, wanted: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    """``(account, region, "name[:version|:label]")`` → the value a launch would read now."""
    from sqlalchemy import select

    from kiln.db.tables.parameters import ParameterLabelRow, ParameterRow, ParameterVersionRow

    if not wanted:
        return {}
    accounts = {account for account, _, _ in wanted}
    rows = {(row.account_id, row.region, row.name): row
            for row in db.scalars(select(ParameterRow).where(ParameterRow.account_id.in_(accounts)))}
    ids = [row.id for row in rows.values()]
    labels = {(label.parameter_id, label.label): label.version
              for label in db.scalars(select(ParameterLabelRow).where(ParameterLabelRow.parameter_id.in_(ids)))}
    values = {(version.parameter_id, version.version): version.value
              for version in db.scalars(select(ParameterVersionRow).where(ParameterVersionRow.parameter_id.in_(ids)))}
    found = {}
    for account, region, selector in wanted:
        name, _, tail = selector.partition(":")
        row = rows.get((account, region, name))
        if row is None:
            continue
        number = int(tail) if tail.isdigit() else labels.get((row.id, tail)) if tail else row.latest_version
        value = values.get((row.id, number)) if number is not None else None
        if value is not None:
            found[(account, region, selector)] = value
    return found


def images_used_by_launch_templates(db: Session, ssm_prefix: str = "resolve:ssm:") -> dict[str, list[str]]:
    """AMI id → who uses it among launch templates: ``launch template lt-… (name) version N ($Default)``
    for each template's default and latest versions (EC2's "in use" for DescribeImageReferences)."""
    from sqlalchemy import func, select

    from kiln.db.tables.fleet import LaunchTemplateRow, LaunchTemplateVersionRow

    latest = {template_id: number for template_id, number in db.execute(
        select(LaunchTemplateVersionRow.template_id, func.max(LaunchTemplateVersionRow.version))
        .group_by(LaunchTemplateVersionRow.template_id))}
    templates = {row.id: row for row in db.scalars(select(LaunchTemplateRow))}
    uses: list[tuple[LaunchTemplateRow, int, str, str]] = []  # template, version, which, image id as given
    for template_id, number, image_id in db.execute(select(
        LaunchTemplateVersionRow.template_id, LaunchTemplateVersionRow.version, LaunchTemplateVersionRow.image_id
    ).where(LaunchTemplateVersionRow.image_id.is_not(None))):
        row = templates.get(template_id)
        if row is None:
            continue
        which = [alias for alias, wanted in (("$Default", row.default_version), ("$Latest", latest.get(template_id)))
                 if number == wanted]
        if which:
            uses.append((row, number, "/".join(which), image_id))
    wanted = {(row.account_id, row.region, image_id[len(ssm_prefix):])
              for row, _, _, image_id in uses if image_id.startswith(ssm_prefix)}
    resolved = _parameter_values(db, wanted)
    users: dict[str, list[str]] = {}
    for row, number, which, image_id in uses:
        if image_id.startswith(ssm_prefix):
            selector = image_id[len(ssm_prefix):]
            ami = resolved.get((row.account_id, row.region, selector))
            via = f" through parameter {selector}"
        else:
            ami, via = image_id, ""
        if ami:
            users.setdefault(ami, []).append(f"launch template {row.id} ({row.name}) version {number} ({which}){via}")
    return users
