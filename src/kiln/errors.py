"""The small error hierarchy every layer raises and every front end renders.

The CLI prints ``str(error)`` as one line plus the hint; the HTTP API maps ``code`` to
Image Builder's error names and ``http_status`` to the status code.
"""

from __future__ import annotations


class KilnError(Exception):
    code = "ServiceException"
    http_status = 500
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, location: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.location = location

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class InvalidInput(KilnError):
    """Bad input: a malformed document, a wrong parameter, a hostile layer."""

    code = "InvalidParameterValueException"
    http_status = 400


class InvalidRequest(KilnError):
    code = "InvalidRequestException"
    http_status = 400


class NotFound(KilnError):
    code = "ResourceNotFoundException"
    http_status = 404


class AlreadyExists(KilnError):
    code = "ResourceAlreadyExistsException"
    http_status = 400


class Conflict(KilnError):
    """The resource is in a state that forbids the request (e.g. a build already running)."""

    code = "ResourceInUseException"
    http_status = 400


class InUse(Conflict):
    """Another resource depends on this one (deleting it would break the user)."""

    code = "ResourceDependencyException"


class Forbidden(KilnError):
    code = "ForbiddenException"
    http_status = 403


class SystemRequirement(KilnError):
    """A host facility kiln needs (root, overlayfs, bubblewrap, a tool) is missing."""

    code = "ServiceUnavailableException"
    http_status = 503
