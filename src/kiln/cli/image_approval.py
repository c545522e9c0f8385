"""``kiln image approve|reject IMAGE_ARN --reason``: answer an image waiting at a WaitForAction step."""

from __future__ import annotations

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit

app = typer.Typer()

REASON = typer.Option(None, "--reason", help="Why (1-1024 characters; the step's reason output).")


@app.command("approve")
def approve(image_arn: str = typer.Argument(..., help="The waiting image's build version ARN."),
            reason: str = REASON, region: Region = DEFAULT_REGION, account: Account = "",
            output: Output = "text") -> None:
    """Approve a waiting image: its AMI gets the watermark `approved` (inherited by every copy) and the
    waiting step resumes (SendWorkflowStepAction RESUME)."""
    from kiln.services.builds.approval import approve as send

    done = send(image_arn, reason, account=account)
    mark = f"; watermark {done['watermarkKey']} on {done['imageId']}" if done["watermarkKey"] else ""
    emit(output, done, f"{image_arn}: approved{mark}")


@app.command("reject")
def reject(image_arn: str = typer.Argument(..., help="The waiting image's build version ARN."),
           reason: str = REASON, region: Region = DEFAULT_REGION, account: Account = "",
           output: Output = "text") -> None:
    """Reject a waiting image: its waiting step fails (SendWorkflowStepAction STOP); by the step's
    onFailure the image fails and nothing is distributed."""
    from kiln.services.builds.approval import reject as send

    done = send(image_arn, reason, account=account)
    emit(output, done, f"{image_arn}: rejected")
