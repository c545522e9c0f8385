"""EC2 Allowed AMIs per account and region: GetAllowedImagesSettings, EnableAllowedImagesSettings
(``enabled`` | ``audit-mode``), DisableAllowedImagesSettings, ReplaceImageCriteriaInAllowedImagesSettings,
and the check each use of an AMI makes (RunInstances, a launch template version).

* ``enabled``: a disallowed AMI cannot be used (EC2's code is not documented; kiln answers
  ``InvalidAMIID.NotFound`` — the AMI is not discoverable either — or ``AuthFailure`` when
  ``KILN_DISALLOWED_IMAGE_ERROR=AuthFailure``, the hint saying why) and DescribeImages leaves it out;
* ``audit-mode``: nothing is refused; each use of a disallowed AMI is recorded as an event
  (``EC2 Allowed AMIs Audit``);
* both: DescribeImages shows ``ImageAllowed``.

As on EC2 the account's own AMIs are never restricted — unless the account chose kiln's stricter
``include_own_images``, which judges them by the same criteria. Ages are judged against
``kiln.db.base.clock_now`` (``KILN_CLOCK`` moves it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from kiln.db.base import clock_now, utcnow
from kiln.db.tables.fleet import AllowedImagesSettingsRow
from kiln.ec2_errors import InvalidAMIIDNotFound, NotAuthorizedForImages
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model import ec2_model
from kiln.services.common.unchanged import while_unchanged
from kiln.services.common.unit import unit_of_work
from kiln.services.ec2.allowed_criteria import check_criteria, judge

DISABLED = "disabled"
AUDIT_EVENT = "EC2 Allowed AMIs Audit"
ERROR_ENV = "KILN_DISALLOWED_IMAGE_ERROR"


def _settings(account: str, region: str) -> tuple[str, list[dict[str, Any]], bool]:
    state, criteria, own = _stored_settings(account, region)
    return state, list(criteria), own


@while_unchanged
def _stored_settings(account: str, region: str) -> tuple[str, list[dict[str, Any]], bool]:
    with unit_of_work() as db:
        row = db.get(AllowedImagesSettingsRow, (account, region))
        if row is None:
            return DISABLED, [], False
        return row.state, list(row.criteria), row.include_own_images


def _save(account: str, region: str, **changes: Any) -> None:
    from kiln.services.accounts.regions import require_region

    require_region(region)
    with unit_of_work() as db:
        row = db.get(AllowedImagesSettingsRow, (account, region))
        if row is None:
            row = AllowedImagesSettingsRow(account_id=account, region=region, state=DISABLED, criteria=[],
                                           include_own_images=False, updated_at=utcnow())
            db.add(row)
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_at = utcnow()


def get_allowed_images_settings(region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """EC2 ``GetAllowedImagesSettings``, plus kiln's own settings under ``Kiln``."""
    state, criteria, own = _settings(account, region)
    return {"State": state, "ImageCriteria": criteria, "ManagedBy": "account",
            "Kiln": {"IncludeOwnImages": own, "AsOf": clock_now()}}


def enable_allowed_images_settings(
    state: str = "enabled", region: str = DEFAULT_REGION, *, include_own_images: bool | None = None,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """EC2 ``EnableAllowedImagesSettings`` (``enabled`` or ``audit-mode``); ``include_own_images``
    (kiln's): judge the account's own AMIs too (None: unchanged)."""
    ec2_model.check_enum(state, "AllowedImagesSettingsEnabledState", "AllowedImagesSettingsState")
    changes: dict[str, Any] = {"state": state}
    if include_own_images is not None:
        changes["include_own_images"] = include_own_images
    _save(account, region, **changes)
    return {"AllowedImagesSettingsState": state}


def disable_allowed_images_settings(region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """EC2 ``DisableAllowedImagesSettings``: the criteria stay for the next enable."""
    (state,) = ec2_model.enum("AllowedImagesSettingsDisabledState")
    _save(account, region, state=state)
    return {"AllowedImagesSettingsState": state}


def replace_image_criteria(
    criteria: list[dict[str, Any]], region: str = DEFAULT_REGION, *, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """EC2 ``ReplaceImageCriteriaInAllowedImagesSettings``: the whole list is replaced."""
    _save(account, region, criteria=check_criteria(criteria))
    return {"ReturnValue": True}


def _judged(image: Any, account: str, criteria: list[dict[str, Any]], own: bool) -> tuple[bool, str]:
    if image.owner_id == account and not own:
        return True, "the account's own AMI"
    return judge(criteria, image, account, clock_now())


def image_allowed(image: Any, *, account: str, region: str) -> bool | None:
    """``ImageAllowed`` of a store ``ImageInfo`` for ``account``; None while the settings are disabled."""
    state, criteria, own = _settings(account, region)
    return None if state == DISABLED else _judged(image, account, criteria, own)[0]


def check_use(image: Any, action: str, *, account: str, region: str) -> None:
    """What a use of the AMI (``action``: RunInstances, CreateLaunchTemplateVersion …) must pass."""
    state, criteria, own = _settings(account, region)
    if state == DISABLED:
        return
    allowed, why = _judged(image, account, criteria, own)
    if allowed:
        return
    if state == "audit-mode":
        from kiln.services.common.events import record_event

        record_event(AUDIT_EVENT, image.id, {"action": action, "imageId": image.id, "account": account,
                                             "region": region, "asOf": clock_now().isoformat(), "reason": why})
        return
    hint = f"not allowed by the account's allowed images settings ({why}); see `kiln image allowed get`"
    if os.environ.get(ERROR_ENV) == "AuthFailure":
        error: Any = NotAuthorizedForImages(image.id)
        error.hint = hint
    else:
        error = InvalidAMIIDNotFound(image.id, hint=hint)
    raise error.at(account=account, region=region)


def annotate(images: list[dict[str, Any]], found: list[Any], *, account: str, region: str) -> list[dict[str, Any]]:
    """DescribeImages under the settings: ``ImageAllowed`` on each (enabled and audit mode), and in
    ``enabled`` mode only the allowed ones and the account's own (its owner still sees an own AMI the
    stricter mode disallows). ``found`` are the store's images in the same order."""
    shapes = {id(image): shape for shape, image in zip(images, found, strict=True)}
    return [shapes[id(image)] if allowed is None else {**shapes[id(image)], "ImageAllowed": allowed}
            for image, allowed in judge_shown(found, account=account, region=region)]


def judging(*, account: str, region: str) -> bool:
    """Whether DescribeImages judges images for ``account`` in ``region`` (the settings are not disabled):
    when not, it shows every image it found, without ``ImageAllowed``."""
    return _stored_settings(account, region)[0] != DISABLED


def judge_shown(found: Sequence[Any], *, account: str, region: str) -> list[tuple[Any, bool | None]]:
    """The store's images DescribeImages shows under the settings, each with its ``ImageAllowed``
    (None while the settings are disabled); see :func:`annotate`. Judging needs no EC2 shape, so a
    caller that pages makes shapes for its page only."""
    state, criteria, own = _settings(account, region)
    if state == DISABLED:
        return [(image, None) for image in found]
    shown: list[tuple[Any, bool | None]] = []
    for image in found:
        allowed = _judged(image, account, criteria, own)[0]
        if state == "enabled" and not allowed and image.owner_id != account:
            continue
        shown.append((image, allowed))
    return shown
