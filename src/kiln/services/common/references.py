"""Who references whom: deleting a resource another one uses is refused, naming the user.

The finders below are the whole reference graph, one per (used type, using family), each a query of
the database tables: recipes (image and container) use components; pipelines use recipes,
infrastructure and distribution configurations; a pipeline is in use while one of its builds runs;
workflows are used by the pipelines that name them and the images being built with them. They read
tables, never the families' modules, so any family can ask without importing the families above it.
``register_reference_finder`` adds a finder for a new resource type.

AMIs are used by instances (the runtime knows those) and by launch templates: each template's
``$Default`` and ``$Latest`` versions, their ``resolve:ssm:`` image ids resolved through the parameter
tables as a launch would resolve them now (``images_used_by_launch_templates``); and by Auto Scaling
groups: the template version each group launches from (its alias resolved now) and the one an active
instance refresh is moving it to (``images_used_by_auto_scaling_groups``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kiln.db.tables.containers import ContainerRecipeRow
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
    recipes = [*_version_rows(db, ImageRecipeRow, None, None), *_version_rows(db, ContainerRecipeRow, None, None)]
    for recipe in recipes:
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


def _pipelines_using_recipe(db: Session, recipe: Arn, field: str = "imageRecipeArn",
                            table: type = ImageRecipeRow) -> list[str]:
    """Pipelines whose recipe reference would no longer resolve without this recipe version."""
    users = []
    for pipeline in _all(db):
        if not pipeline.body.get(field):
            continue
        reference = parse_arn(pipeline.body[field])
        if (reference.account, reference.name) != (recipe.account, recipe.name):
            continue
        wanted = reference.version or VersionFilter((None, None, None))
        if recipe.exact_version is None or not wanted.matches(recipe.exact_version):
            continue
        others = [
            row for row in _version_rows(db, table, recipe.account, recipe.name)
            if row.arn != str(recipe.without_build()) and wanted.matches(Version(row.major, row.minor, row.patch))
        ]
        if not others:
            users.append(pipeline.arn)
    return users


def _pipelines_using_container_recipe(db: Session, recipe: Arn) -> list[str]:
    return _pipelines_using_recipe(db, recipe, "containerRecipeArn", ContainerRecipeRow)


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


def _names_workflow(reference: str, workflow: Arn) -> bool:
    """Whether a ``workflowArn`` (build ARN, or version ARN with ``x`` wildcards) can mean ``workflow``."""
    from kiln.errors import InvalidInput

    try:
        wanted = parse_arn(reference, allow_short=True)
    except InvalidInput:
        return False
    if (wanted.resource_type, wanted.name, wanted.account) != (workflow.resource_type, workflow.name,
                                                              workflow.account):
        return False
    exact = workflow.exact_version
    if wanted.version is not None and exact is not None and not wanted.version.matches(exact):
        return False
    return wanted.build is None or wanted.build == workflow.build


def _users_of_workflow(db: Session, workflow: Arn) -> list[str]:
    """Pipelines that name the workflow, and images being built with it."""
    from sqlalchemy import select

    users = [row.arn for row in _all(db)
             if any(_names_workflow(str(entry.get("workflowArn", "")), workflow)
                    for entry in row.body.get("workflows") or [])]
    building = select(ImageBuild.arn, ImageBuild.workflows).where(ImageBuild.status.in_(ACTIVE_BUILD_STATES))
    users += [arn for arn, entries in db.execute(building)
              if any(_names_workflow(str(entry.get("workflowArn", "")), workflow) for entry in entries or [])]
    return users


_finders: dict[str, list[ReferenceFinder]] = {
    "workflow/build": [_users_of_workflow],
    "workflow/test": [_users_of_workflow],
    "workflow/distribution": [_users_of_workflow],
    "component": [_recipes_using_component],
    "image-recipe": [_pipelines_using_recipe],
    "container-recipe": [_pipelines_using_container_recipe],
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
    rows = {(account, region, name): (parameter_id, latest) for parameter_id, account, region, name, latest in
            db.execute(select(ParameterRow.id, ParameterRow.account_id, ParameterRow.region, ParameterRow.name,
                              ParameterRow.latest_version).where(ParameterRow.account_id.in_(accounts)))}
    ids = [parameter_id for parameter_id, _ in rows.values()]
    labels = {(parameter_id, label): version for parameter_id, label, version in db.execute(
        select(ParameterLabelRow.parameter_id, ParameterLabelRow.label, ParameterLabelRow.version)
        .where(ParameterLabelRow.parameter_id.in_(ids)))}
    values = {(parameter_id, version): value for parameter_id, version, value in db.execute(
        select(ParameterVersionRow.parameter_id, ParameterVersionRow.version, ParameterVersionRow.value)
        .where(ParameterVersionRow.parameter_id.in_(ids)))}
    found = {}
    for account, region, selector in wanted:
        name, _, tail = selector.partition(":")
        row = rows.get((account, region, name))
        if row is None:
            continue
        parameter_id, latest = row
        number = int(tail) if tail.isdigit() else labels.get((parameter_id, tail)) if tail else latest
        value = values.get((parameter_id, number)) if number is not None else None
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
    templates = {template_id: (account, region, name, default) for template_id, account, region, name, default in
                 db.execute(select(LaunchTemplateRow.id, LaunchTemplateRow.account_id, LaunchTemplateRow.region,
                                   LaunchTemplateRow.name, LaunchTemplateRow.default_version))}
    uses: list[tuple[str, int, str, str]] = []  # template id, version, which, image id as given
    for template_id, number, image_id in db.execute(select(
        LaunchTemplateVersionRow.template_id, LaunchTemplateVersionRow.version, LaunchTemplateVersionRow.image_id
    ).where(LaunchTemplateVersionRow.image_id.is_not(None))):
        template = templates.get(template_id)
        if template is None:
            continue
        which = [alias for alias, wanted in (("$Default", template[3]), ("$Latest", latest.get(template_id)))
                 if number == wanted]
        if which:
            uses.append((template_id, number, "/".join(which), image_id))
    wanted = {(templates[template_id][0], templates[template_id][1], image_id[len(ssm_prefix):])
              for template_id, _, _, image_id in uses if image_id.startswith(ssm_prefix)}
    resolved = _parameter_values(db, wanted)
    users: dict[str, list[str]] = {}
    for template_id, number, which, image_id in uses:
        account, region, name, _ = templates[template_id]
        if image_id.startswith(ssm_prefix):
            selector = image_id[len(ssm_prefix):]
            ami = resolved.get((account, region, selector))
            via = f" through parameter {selector}"
        else:
            ami, via = image_id, ""
        if ami:
            users.setdefault(ami, []).append(f"launch template {template_id} ({name}) version {number} ({which}){via}")
    return users


def images_used_by_auto_scaling_groups(db: Session, ssm_prefix: str = "resolve:ssm:") -> dict[str, list[str]]:
    """AMI id → the Auto Scaling groups that launch it: ``Auto Scaling group NAME (launch template lt-…
    version N)`` for the version each group names (``$Default``/``$Latest`` resolved now) and for the
    desired configuration of the group's active instance refresh."""
    from sqlalchemy import func, select

    from kiln.db.tables.autoscaling import AutoScalingGroupRow, InstanceRefreshRow
    from kiln.db.tables.fleet import LaunchTemplateRow, LaunchTemplateVersionRow

    groups = list(db.scalars(select(AutoScalingGroupRow).where(AutoScalingGroupRow.status.is_(None))))
    if not groups:
        return {}
    refreshing = {row.group_arn: row.desired_configuration for row in db.scalars(select(InstanceRefreshRow).where(
        InstanceRefreshRow.status.in_(("Pending", "InProgress", "Cancelling")),
        InstanceRefreshRow.desired_configuration.is_not(None)))}
    uses: list[tuple[AutoScalingGroupRow, str, str]] = []  # group, template id, version as named
    for group in groups:
        uses.append((group, group.template_id, group.template_version))
        desired = (refreshing.get(group.arn) or {}).get("LaunchTemplate")
        if desired:
            uses.append((group, desired["LaunchTemplateId"], str(desired.get("Version") or "$Default")))
    template_ids = {template_id for _, template_id, _ in uses}
    templates = {row.id: row for row in db.scalars(
        select(LaunchTemplateRow).where(LaunchTemplateRow.id.in_(template_ids)))}
    latest = {template_id: number for template_id, number in db.execute(
        select(LaunchTemplateVersionRow.template_id, func.max(LaunchTemplateVersionRow.version))
        .where(LaunchTemplateVersionRow.template_id.in_(template_ids)).group_by(LaunchTemplateVersionRow.template_id))}
    images = {(template_id, number): image_id for template_id, number, image_id in db.execute(select(
        LaunchTemplateVersionRow.template_id, LaunchTemplateVersionRow.version, LaunchTemplateVersionRow.image_id
    ).where(LaunchTemplateVersionRow.template_id.in_(template_ids)))}
    found: list[tuple[AutoScalingGroupRow, str, int, str]] = []
    for group, template_id, version in uses:
        template = templates.get(template_id)
        if template is None:
            continue
        number = template.default_version if version == "$Default" else latest.get(template_id) \
            if version == "$Latest" else int(version) if version.isdigit() else None
        image_id = images.get((template_id, number)) if number is not None else None
        if image_id and number is not None:
            found.append((group, template_id, number, image_id))
    resolved = _parameter_values(db, {(group.account_id, group.region, image_id[len(ssm_prefix):])
                                      for group, _, _, image_id in found if image_id.startswith(ssm_prefix)})
    users: dict[str, list[str]] = {}
    for group, template_id, number, image_id in found:
        via = ""
        if image_id.startswith(ssm_prefix):
            via = f" through parameter {image_id[len(ssm_prefix):]}"
            image_id = resolved.get((group.account_id, group.region, image_id[len(ssm_prefix):]), "")
        label = f"Auto Scaling group {group.name} (launch template {template_id} version {number}){via}"
        if image_id and label not in users.get(image_id, []):
            users.setdefault(image_id, []).append(label)
    return users
