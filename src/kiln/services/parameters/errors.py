"""Parameter Store's errors, one class per SSM error code, on kiln's error hierarchy.

SSM answers in JSON 1.1 (``{"__type": code, "message": …}``, HTTP 400); ``str()`` puts the code in
front as EC2's errors do, and each class is also the generic kiln error it is a kind of.
"""

from __future__ import annotations

from kiln.errors import AlreadyExists, Conflict, InvalidInput, KilnError, NotFound


class SsmError(KilnError):
    code = "InternalServerError"
    http_status = 400

    def __str__(self) -> str:
        return f"{self.code}: {super().__str__()}"


class ValidationException(SsmError, InvalidInput):
    """A malformed name, value, type, data type or request."""

    code = "ValidationException"


class InvalidImageParameterValue(ValidationException):
    """An ``aws:ec2:image`` value that is not an AMI available to the account in the region. SSM
    checks it after answering and reports it only in a ``Parameter Store Change`` event (exception
    "Unable to Describe Resource"); kiln checks before writing, refuses, and records that event too."""


class ParameterAlreadyExists(SsmError, AlreadyExists):
    code = "ParameterAlreadyExists"


class ParameterNotFound(SsmError, NotFound):
    code = "ParameterNotFound"


class ParameterVersionNotFound(SsmError, NotFound):
    code = "ParameterVersionNotFound"


class ParameterVersionLabelLimitExceeded(SsmError, InvalidInput):
    code = "ParameterVersionLabelLimitExceeded"


class ParameterMaxVersionLimitExceeded(SsmError, Conflict):
    code = "ParameterMaxVersionLimitExceeded"


class HierarchyLevelLimitExceeded(SsmError, InvalidInput):
    code = "HierarchyLevelLimitExceededException"


class UnsupportedParameterType(SsmError, InvalidInput):
    code = "UnsupportedParameterType"
