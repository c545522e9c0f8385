"""Who references whom: deleting a resource another one uses is refused, naming the user.

Each family that can *use* other resources registers a finder for the resource type it points at:
``register_reference_finder("component", finder)`` where ``finder(db, arn)`` returns the ARNs of the
resources that would break. Modules listed in ``USER_MODULES`` are imported on demand so that their
finders are registered before a delete asks (pipelines and images add their module name here).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from kiln.errors import InUse

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kiln.model.arn import Arn

ReferenceFinder = Callable[["Session", "Arn"], list[str]]

USER_MODULES: list[str] = [
    "kiln.services.recipes",
    "kiln.services.pipelines",
    "kiln.services.images",
]
_finders: dict[str, list[ReferenceFinder]] = {}


def register_reference_finder(resource_type: str, finder: ReferenceFinder) -> None:
    """Declare that ``finder`` reports users of resources of ``resource_type``."""
    finders = _finders.setdefault(resource_type, [])
    if finder not in finders:
        finders.append(finder)


def _load_user_modules() -> None:
    for name in USER_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise


def users_of(db: Session, arn: Arn) -> list[str]:
    """ARNs of the resources that use ``arn``."""
    _load_user_modules()
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
