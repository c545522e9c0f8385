"""AWS failures as kiln errors: one line naming the call and AWS's error code, no traceback."""

from __future__ import annotations

from kiln.errors import KilnError


class AwsError(KilnError):
    """A call to AWS failed (after retries, when the failure was worth retrying)."""

    code = "AwsServiceException"
    http_status = 502

    def __init__(self, message: str, *, aws_code: str = "", hint: str | None = None,
                 location: str | None = None) -> None:
        super().__init__(message, hint=hint, location=location)
        self.aws_code = aws_code


def error_code(error: BaseException) -> str:
    """AWS's error code of a botocore ``ClientError`` ("" for anything else)."""
    response = getattr(error, "response", None)
    return str((response or {}).get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def http_status(error: BaseException) -> int:
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return 0
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def as_kiln_error(error: Exception, call: str, location: str | None = None) -> KilnError:
    """``error`` (botocore's) as one clear kiln error naming ``call``."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    if isinstance(error, KilnError):
        return error
    if isinstance(error, ProfileNotFound):
        return AwsError(f"AWS profile {error.kwargs.get('profile')!r} is not configured",
                        hint="see `aws configure list-profiles`", location="--profile")
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return AwsError("no AWS credentials found (environment, profile, instance role)",
                        hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or pass --profile")
    if isinstance(error, NoRegionError):
        return AwsError("no AWS region given", location="--region")
    if isinstance(error, ClientError):
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message") or str(error)
        return AwsError(f"{call}: {code}: {message}", aws_code=code, location=location)
    if isinstance(error, BotoCoreError):
        return AwsError(f"{call}: {error}", location=location)
    return AwsError(f"{call}: {type(error).__name__}: {error}", location=location)
