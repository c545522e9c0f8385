"""An image's workflows: the ``workflows`` of CreateImage / CreateImagePipeline resolved to workflow
builds with typed parameters, or — none given — the managed ones.

Image Builder's rules: at most one BUILD and one DISTRIBUTION workflow and any number of TEST
workflows, ten in all; omitting TEST skips testing; omitting DISTRIBUTION still carries out the
distribution configuration (kiln runs the managed ``distribute-image`` then). kiln builds every image
from its recipe, so a list without a BUILD workflow is refused. Each parameter given must be one the
workflow declares, of its type; one without a default must be given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kiln.errors import InvalidInput
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.services.workflows.document import WorkflowDocument, check_document
from kiln.services.workflows.managed import ensure_managed_workflows, managed_arn, managed_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

MAX_WORKFLOWS = 10
STAGE_ORDER = ("BUILD", "TEST", "DISTRIBUTION")


@dataclass(frozen=True)
class ImageWorkflow:
    arn: str
    type: str
    document: WorkflowDocument
    parameters: dict[str, Any]
    content_hash: str
    on_failure: str = "ABORT"
    parallel_group: str | None = None
    managed: bool = False


def _typed(kind: str, values: list[str], where: str, name: str) -> Any:
    if kind == "stringList":
        return list(values)
    if len(values) != 1:
        raise InvalidInput(f"parameter {name} is a {kind}: give exactly one value", location=where)
    value = values[0]
    if kind == "integer":
        try:
            return int(value)
        except ValueError:
            raise InvalidInput(f"parameter {name} is an integer, not {value!r}", location=where) from None
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise InvalidInput(f"parameter {name} is a boolean (true or false), not {value!r}", location=where)
        return value.lower() == "true"
    return value


def _parameters(document: WorkflowDocument, given: list[dict[str, Any]] | None, where: str,
                arn: str) -> dict[str, Any]:
    declared = {parameter.name: parameter for parameter in document.parameters}
    values: dict[str, Any] = {}
    for index, entry in enumerate(given or []):
        name = entry.get("name")
        at = f"{where}.parameters[{index}]"
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise InvalidInput(f"workflow {arn} has no parameter {name!r} (parameters: {known})", location=at)
        value = entry.get("value")
        if not isinstance(value, list):
            raise InvalidInput(f"parameter {name}: value must be a list of strings", location=f"{at}.value")
        values[name] = _typed(declared[name].type, [str(item) for item in value], f"{at}.value", name)
    for name, parameter in declared.items():
        if name not in values:
            if not parameter.has_default:
                raise InvalidInput(f"workflow {arn} needs parameter {name!r} (it has no default)",
                                   location=f"{where}.parameters")
            values[name] = parameter.default
    return values


def _resolved(db: Session, arn: str, given: dict[str, Any], where: str, caller: str, region: str,
              managed: bool = False) -> ImageWorkflow:
    from kiln.services.workflows.resource import resolve_workflow

    row = resolve_workflow(arn, db=db, field=f"{where}.workflowArn", caller=caller, region=region)
    document = check_document(row.data, workflow_type=row.type, where=row.arn)
    return ImageWorkflow(
        arn=row.arn, type=row.type, document=document,
        parameters=_parameters(document, given.get("parameters"), where, row.arn),
        content_hash=row.content_hash, on_failure=given.get("onFailure") or "ABORT",
        parallel_group=given.get("parallelGroup"), managed=managed,
    )


def resolve_workflows(
    configurations: list[dict[str, Any]] | None, *, db: Session | None = None, account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION, field: str = "workflows", container: bool = False,
) -> list[ImageWorkflow]:
    """The workflows an image runs, in stage order (BUILD, TESTs, DISTRIBUTION); the managed ones are
    the container ones for a ``container`` recipe."""
    from kiln.services.common.unit import unit_of_work

    configurations = list(configurations or [])
    if len(configurations) > MAX_WORKFLOWS:
        raise InvalidInput(f"at most {MAX_WORKFLOWS} workflows (got {len(configurations)})", location=field)
    with unit_of_work(db) as work:
        ensure_managed_workflows(work)
        if not configurations:
            return [_resolved(work, managed_arn(kind, region, container), {}, f"{field}[managed {name}]", account,
                              region, True) for kind, name in managed_of(container)]
        chosen = [_resolved(work, entry.get("workflowArn") or "", entry, f"{field}[{index}]", account, region)
                  for index, entry in enumerate(configurations)]
        for kind in ("BUILD", "DISTRIBUTION"):
            if sum(1 for item in chosen if item.type == kind) > 1:
                raise InvalidInput(f"at most one {kind} workflow", location=field)
        if not any(item.type == "BUILD" for item in chosen):
            raise InvalidInput("kiln builds every image from its recipe: give a BUILD workflow "
                               f"(e.g. {managed_arn('BUILD', region, container)}) or no workflows at all",
                               location=field)
        for index, item in enumerate(chosen):
            if item.parallel_group and item.type != "TEST":
                raise InvalidInput("parallelGroup is for TEST workflows only",
                                   location=f"{field}[{index}].parallelGroup")
        if not any(item.type == "DISTRIBUTION" for item in chosen):
            chosen.append(_resolved(work, managed_arn("DISTRIBUTION", region, container), {}, f"{field}[managed]",
                                    account, region, True))
        return sorted(chosen, key=lambda item: STAGE_ORDER.index(item.type))


def check_configurations(
    configurations: list[dict[str, Any]] | None, *, db: Session | None = None, account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION, field: str = "workflows", container: bool = False,
) -> list[dict[str, Any]] | None:
    """``workflows`` as a request gave them, once they resolve (:func:`resolve_workflows` raises one
    clear error otherwise); None for none (the managed ones)."""
    if not configurations:
        return None
    entries = [entry.dump() if hasattr(entry, "dump") else dict(entry) for entry in configurations]
    resolve_workflows(entries, db=db, account=account, region=region, field=field, container=container)
    return entries
