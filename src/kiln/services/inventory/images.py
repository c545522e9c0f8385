"""The AMI an inventory command means: an AMI id, or an Image Builder image's output AMI in the region."""

from __future__ import annotations

from kiln.errors import InvalidInput
from kiln.home import DEFAULT_ACCOUNT
from kiln.services.builds import records
from kiln.services.ec2.callers import principal
from kiln.store import api as store
from kiln.store.images import ImageInfo


def resolve_ami(resource: str, region: str, account: str = DEFAULT_ACCOUNT) -> ImageInfo:
    """The AMI ``resource`` names (an ``ami-…`` id the account may see, or an image build ARN of the
    account whose AMI in ``region`` is taken)."""
    if resource.startswith("ami-"):
        return store.get_image(resource, region, principal(account))
    image = records.get_image(resource, caller=account, region=region)
    own = records.own_ami(image, region)
    if own is None:
        raise InvalidInput(f"image {resource} has no AMI in region {region} (status "
                           f"{image['state']['status']})", location=resource)
    return store.get_image(own["image"], region, principal(account))
