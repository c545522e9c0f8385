"""``kiln image watermark attach|detach|list`` and ``kiln image ancestry``: an AMI's marks and its lineage
(EC2 AttachImageWatermark / DetachImageWatermark / GetImageAncestry, ``kiln.services.ec2.images``)."""

from __future__ import annotations

import typer

from kiln.cli.options import DEFAULT_REGION, Account, Output, Region
from kiln.cli.output import emit, table

app = typer.Typer()
watermark = typer.Typer(no_args_is_help=True, help="Watermarks of an AMI: attach, detach, list.")


@watermark.command("attach")
def attach(ami_id: str, name: str = typer.Argument(..., help="3-128 letters, digits, spaces and ( ) [ ] . / - ' @ _"),
           region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text") -> None:
    """Mark an AMI you own; every AMI made or copied from it inherits the mark (key ACCOUNT:NAME)."""
    from kiln.services.ec2 import images

    result = images.attach_image_watermark(ami_id, name, region, account=account)
    emit(output, {"ImageId": ami_id, **result}, result["WatermarkKey"])


@watermark.command("detach")
def detach(ami_id: str, key: str = typer.Argument(..., help="The watermark key, ACCOUNT:NAME."),
           region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text") -> None:
    """Remove a watermark from an AMI you own (images already made from it keep theirs)."""
    from kiln.services.ec2 import images

    result = images.detach_image_watermark(ami_id, key, region, account=account)
    emit(output, {"ImageId": ami_id, "WatermarkKey": key, **result}, f"{ami_id}: {key} detached")


@watermark.command("list")
def list_marks(ami_id: str, region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text") -> None:
    """The AMI's watermarks, with the AMI each was first attached to."""
    from kiln.services.ec2 import images

    marks = list(images.describe_image(ami_id, region, account=account).get("ImageWatermarks", []))

    def text() -> None:
        table(["WatermarkKey", "SourceImageId", "SourceImageRegion", "SourceImageCreated", "Attached"],
              [(m["WatermarkKey"], m["SourceImageId"], m["SourceImageRegion"], m["SourceImageCreationTime"],
                m["WatermarkCreationTime"]) for m in marks])

    emit(output, {"ImageId": ami_id, "ImageWatermarks": marks}, text)


@app.command("ancestry")
def ancestry(ami_id: str, region: Region = DEFAULT_REGION, account: Account = "", output: Output = "text") -> None:
    """The AMI and each AMI it was made or copied from, to its root (EC2 GetImageAncestry)."""
    from kiln.services.ec2 import images

    result = images.get_image_ancestry(ami_id, region, account=account)

    def text() -> None:
        table(["ImageId", "SourceImageId", "SourceImageRegion", "Created", "OwnerAlias"],
              [(e["ImageId"], e.get("SourceImageId", ""), e.get("SourceImageRegion", ""), e["CreationDate"],
                e.get("ImageOwnerAlias", "")) for e in result["ImageAncestryEntries"]])

    emit(output, result, text)
