"""EC2's errors, one class per error code, on kiln's error hierarchy.

As on the wire, the code and the HTTP status are data of the class and the message is EC2's text
without the code: ``InvalidAMIIDNotFound("ami-1").message == "The image id '[ami-1]' does not exist"``.
``str()`` puts the code in front (``InvalidAMIID.NotFound: The image id ...``), which is what the CLI
prints and what build and lifecycle records keep as a reason. Each class also subclasses the
generic kiln error it is a kind of, so ``except NotFound`` still catches an unknown AMI.

They live at the bottom floor because the image store and the runtime raise them.
"""

from __future__ import annotations

from collections import deque
from typing import Self

from kiln.errors import AlreadyExists, Conflict, Forbidden, InUse, InvalidInput, InvalidRequest, KilnError, NotFound


class Ec2Error(KilnError):
    """An EC2 API error. Client errors are HTTP 400 unless a subclass says otherwise.

    A refusal also names whom it refused and where (``.at(account=…, region=…)``, read back as
    ``context``), beside EC2's message rather than in it: an AMI another account may not see is
    refused with exactly the text of one that does not exist.
    """

    code = "InternalError"
    http_status = 400
    account: str | None = None
    region: str | None = None

    def at(self, *, account: str | None = None, region: str | None = None) -> Self:
        self.account, self.region = account, region
        return self

    @property
    def context(self) -> str | None:
        """``as account 123456789012 in region local`` (what is known of it), or None."""
        parts = [f"as account {self.account}" * bool(self.account), f"in region {self.region}" * bool(self.region)]
        return " ".join(part for part in parts if part) or None

    def __str__(self) -> str:
        return f"{self.code}: {super().__str__()}"


class AuthFailure(Ec2Error, Forbidden):
    """The caller may not use the resource (another account's AMI it has no permission for)."""

    code = "AuthFailure"


class NotAuthorizedForImages(AuthFailure):
    """RunInstances, and the owner's actions on an AMI, by an account the AMI's owner has not allowed."""

    def __init__(self, *image_ids: str) -> None:
        super().__init__(f"Not authorized for images: [{', '.join(image_ids)}]")
        self.image_ids = list(image_ids)


class InvalidEc2Request(Ec2Error, InvalidRequest):
    """EC2's ``InvalidRequest``."""

    code = "InvalidRequest"


class ImageStorageNotAccessible(InvalidEc2Request):
    """CopyImage (and export) of another account's AMI whose snapshots it may not read (no
    ``createVolumePermission``); the message is EC2's, observed."""

    def __init__(self) -> None:
        super().__init__("You do not have permission to access the storage of this ami.")


class InvalidUserIDMalformed(Ec2Error, InvalidInput):
    """An ``Owners`` / ``ExecutableUsers`` value that is neither an account id nor a known alias."""

    code = "InvalidUserID.Malformed"


# --- images -------------------------------------------------------------------------------------


class InvalidAMIIDNotFound(Ec2Error, NotFound):
    """Unknown in this region (also: not visible to the caller, whose existence is not revealed)."""

    code = "InvalidAMIID.NotFound"

    def __init__(self, *image_ids: str, hint: str | None = None) -> None:
        if len(image_ids) == 1:
            message = f"The image id '[{image_ids[0]}]' does not exist"
        else:
            message = f"The image ids '[{', '.join(image_ids)}]' do not exist"
        super().__init__(message, hint=hint)
        self.image_ids = list(image_ids)


class InvalidAMIIDUnavailable(Ec2Error, Conflict):
    """Deregistered, or in a state that forbids the request."""

    code = "InvalidAMIID.Unavailable"


class InvalidAMIIDDisabled(Ec2Error, Forbidden):
    """The AMI is disabled: it cannot be launched or copied until enabled again."""

    code = "InvalidAMIID.Disabled"


class InvalidAMINameMalformed(Ec2Error, InvalidInput):
    code = "InvalidAMIName.Malformed"


class InvalidAMINameDuplicate(Ec2Error, AlreadyExists):
    code = "InvalidAMIName.Duplicate"


class InvalidAMIAttributeItemValue(Ec2Error, InvalidInput):
    """A launch permission entry with a bad value (an account id that is not 12 digits, a group
    other than ``all``)."""

    code = "InvalidAMIAttributeItemValue"


class IncorrectState(Ec2Error, Conflict):
    """The resource's state forbids the request (e.g. sharing an AMI that is not available)."""

    code = "IncorrectState"


class OperationNotPermitted(Ec2Error, Forbidden):
    code = "OperationNotPermitted"


class InvalidParameterValue(Ec2Error, InvalidInput):
    code = "InvalidParameterValue"


class ImageDeregistrationProtected(InvalidParameterValue, Forbidden):
    """DeregisterImage while deregistration protection (or its cooldown) is on."""


class InvalidID(Ec2Error, NotFound):
    """A resource id (CreateTags, DeleteTags) that is malformed or unknown."""

    code = "InvalidID"

    def __init__(self, resource_id: str, *, hint: str | None = None) -> None:
        super().__init__(f"The ID '{resource_id}' is not valid or does not exist", hint=hint)
        self.resource_id = resource_id


# --- snapshots ----------------------------------------------------------------------------------


class InvalidSnapshotNotFound(Ec2Error, NotFound):
    code = "InvalidSnapshot.NotFound"

    def __init__(self, snapshot_id: str, *, hint: str | None = None) -> None:
        super().__init__(f"The snapshot '{snapshot_id}' does not exist.", hint=hint)
        self.snapshot_id = snapshot_id


class InvalidSnapshotInUse(Ec2Error, InUse):
    """A registered AMI uses the snapshot (DeleteSnapshot)."""

    code = "InvalidSnapshot.InUse"

    def __init__(self, snapshot_id: str, user: str, *, hint: str | None = None) -> None:
        super().__init__(f"The snapshot {snapshot_id} is currently in use by {user}", hint=hint)
        self.snapshot_id = snapshot_id


# --- instances ----------------------------------------------------------------------------------


class InvalidInstanceIDNotFound(Ec2Error, NotFound):
    code = "InvalidInstanceID.NotFound"

    def __init__(self, instance_id: str, *, hint: str | None = None) -> None:
        super().__init__(f"The instance ID '{instance_id}' does not exist", hint=hint)
        self.instance_id = instance_id


class IncorrectInstanceState(Ec2Error, Conflict):
    """The instance is not in a state that allows the request (e.g. exec in a stopped instance)."""

    code = "IncorrectInstanceState"


class UnsupportedOperation(Ec2Error, InvalidRequest):
    """The request does not apply to this instance (e.g. stopping an instance-store instance)."""

    code = "UnsupportedOperation"


# --- requests and launch templates --------------------------------------------------------------


class InvalidParameterCombination(Ec2Error, InvalidInput):
    """Parameters that exclude each other given together (a launch template's id and its name)."""

    code = "InvalidParameterCombination"


class MissingParameter(Ec2Error, InvalidInput):
    """A parameter the request needs is absent (no launch template id or name; no ImageId to launch)."""

    code = "MissingParameter"


class InvalidLaunchTemplateIdMalformed(Ec2Error, InvalidInput):
    code = "InvalidLaunchTemplateId.Malformed"


class InvalidLaunchTemplateIdNotFound(Ec2Error, NotFound):
    code = "InvalidLaunchTemplateId.NotFound"


class InvalidLaunchTemplateIdVersionNotFound(Ec2Error, NotFound):
    """A version (number, ``$Default``, ``$Latest``) the template does not have."""

    code = "InvalidLaunchTemplateId.VersionNotFound"


class InvalidLaunchTemplateNameMalformed(Ec2Error, InvalidInput):
    code = "InvalidLaunchTemplateName.MalformedException"


class InvalidLaunchTemplateNameNotFound(Ec2Error, NotFound):
    code = "InvalidLaunchTemplateName.NotFoundException"


class InvalidLaunchTemplateNameAlreadyExists(Ec2Error, AlreadyExists):
    code = "InvalidLaunchTemplateName.AlreadyExistsException"


class IdempotentParameterMismatch(Ec2Error, InvalidInput):
    """A client token used before with a different request."""

    code = "IdempotentParameterMismatch"


def error_classes() -> dict[str, type[Ec2Error]]:
    """Every EC2 error code with its most general class (what a front end answering EC2 requests
    maps a code to); a refinement that keeps its parent's code is not listed."""
    found: dict[str, type[Ec2Error]] = {}
    pending: deque[type[Ec2Error]] = deque(Ec2Error.__subclasses__())
    while pending:
        cls = pending.popleft()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return dict(sorted(found.items()))


# --- key pairs ----------------------------------------------------------------------------------


class InvalidKeyPairNotFound(Ec2Error, NotFound):
    code = "InvalidKeyPair.NotFound"

    def __init__(self, key: str, *, hint: str | None = None) -> None:
        super().__init__(f"The key pair '{key}' does not exist", hint=hint)


class InvalidKeyPairDuplicate(Ec2Error, AlreadyExists):
    code = "InvalidKeyPair.Duplicate"

    def __init__(self, name: str) -> None:
        super().__init__(f"The keypair already exists: {name}")


class InvalidKeyFormat(Ec2Error, InvalidInput):
    """ImportKeyPair's public key is not an OpenSSH public key of a supported type."""

    code = "InvalidKey.Format"
