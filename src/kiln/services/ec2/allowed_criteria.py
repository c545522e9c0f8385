"""EC2 Allowed AMIs criteria (``ImageCriterionRequest``): checked when given, and judged against an AMI.

An AMI is allowed when it matches any criterion; it matches a criterion when every member given holds
(inside a list member, any value may match). Members as botocore's ``ec2`` model names them, plus
kiln's ``RequiredTags`` (``[{Key, Value}]``, all present on the AMI) and ``PatchedWithinDays`` (the
AMI's patched date within that many days; kiln records no package updates after a build, so the
patched date is the build's: the AMI's creation date, as ``kiln compliance audit`` reports it).
``ImageWatermarks`` passes an AMI when one of its watermarks meets every member of one filter (an AMI
without watermarks fails).
Ages are judged against the caller's clock: an AMI fails ``N`` days when ``now - t > N * 24 h``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from kiln.ec2_errors import InvalidParameterValue
from kiln.model import ec2_model
from kiln.model.organizations import ACCOUNT_ID
from kiln.model.sharing import OWNER_ALIASES

MAX_CRITERIA = 10
KILN_MEMBERS = ("RequiredTags", "PatchedWithinDays")
NOT_EVALUATED = ("ScanResultCondition",)  # kiln has no scans yet
IMAGE_NAME = re.compile(r"^[a-zA-Z0-9 ()\[\]./\-'@_*?]{1,128}$")
PRODUCT_CODE = re.compile(r"^[a-zA-Z0-9]{1,25}$")
LIMITS = {"ImageProviders": 200, "ImageNames": 50, "MarketplaceProductCodes": 50, "RequiredTags": 50,
          "ImageWatermarks": 50}
WATERMARK_PATTERNS = ("WatermarkKey", "SourceImageRegion")
WATERMARK_DAYS = ("MaximumDaysSinceSourceImageCreated", "MaximumDaysSinceWatermarkCreated")


def _bad(message: str, where: str) -> InvalidParameterValue:
    return InvalidParameterValue(message, location=where)


def _strings(value: Any, member: str, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        raise _bad(f"{member} is a non-empty list of strings", where)
    if len(value) > LIMITS[member]:
        raise _bad(f"{member} has at most {LIMITS[member]} values", where)
    return value


def _days(value: Any, member: str, where: str) -> dict[str, int]:
    if not isinstance(value, dict) or set(value) != {member}:
        raise _bad(f"give {{{member}: DAYS}}", where)
    days = value[member]
    if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 2147483647:
        raise _bad(f"{member} is a whole number of days, 0 or more", f"{where}.{member}")
    return {member: days}


def _providers(value: Any, where: str) -> list[str]:
    providers = _strings(value, "ImageProviders", where)
    for provider in providers:
        if provider not in (*OWNER_ALIASES, "none") and not ACCOUNT_ID.match(provider):
            raise _bad(f"{provider!r} is not amazon, aws-marketplace, aws-backup-vault, none or an account id", where)
    if "none" in providers and len(providers) > 1:
        raise _bad("'none' (the account's own AMIs only) must be the only image provider", where)
    return providers


def _names(value: Any, where: str) -> list[str]:
    names = _strings(value, "ImageNames", where)
    for name in names:
        if not IMAGE_NAME.match(name):
            raise _bad(f"image name pattern {name!r}: 1-128 letters, digits, spaces and ( ) [ ] . / - ' @ _ * ?",
                       where)
        if "?" in name and len(name) < 3:
            raise _bad(f"image name pattern {name!r} uses '?' and so needs at least 3 characters", where)
    return names


def _codes(value: Any, where: str) -> list[str]:
    codes = _strings(value, "MarketplaceProductCodes", where)
    for code in codes:
        if not PRODUCT_CODE.match(code):
            raise _bad(f"product code {code!r} is 1-25 letters and digits", where)
    return codes


def _required_tags(value: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value or len(value) > LIMITS["RequiredTags"]:
        raise _bad("RequiredTags is a list of 1 to 50 {Key, Value}", where)
    for index, tag in enumerate(value):
        if not isinstance(tag, dict) or set(tag) != {"Key", "Value"} or not all(isinstance(v, str) for v in
                                                                                 tag.values()) or not tag["Key"]:
            raise _bad("a required tag is {Key, Value}", f"{where}[{index}]")
    return value


def _whole_days(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 2147483647:
        raise _bad("a whole number of days, 0 to 2147483647", where)
    return value


def _watermark_filters(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value or len(value) > LIMITS["ImageWatermarks"]:
        raise _bad("ImageWatermarks is a list of 1 to 50 watermark filters", where)
    filters = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, dict) or not item:
            raise _bad(f"a watermark filter gives one or more of {', '.join(WATERMARK_PATTERNS + WATERMARK_DAYS)}",
                       at)
        checked: dict[str, Any] = {}
        for member, given in item.items():
            if member in WATERMARK_PATTERNS:
                if not isinstance(given, str) or not given:
                    raise _bad(f"{member} is a pattern (* and ? wildcards)", f"{at}.{member}")
                checked[member] = given
            elif member in WATERMARK_DAYS:
                checked[member] = _whole_days(given, f"{at}.{member}")
            else:
                raise _bad(f"unknown member {member!r}; use {', '.join(WATERMARK_PATTERNS + WATERMARK_DAYS)}",
                           f"{at}.{member}")
        filters.append(checked)
    return filters


def check_criteria(criteria: Any, field: str = "ImageCriteria") -> list[dict[str, Any]]:
    """The criteria, or one error naming the criterion and member that is wrong."""
    if not isinstance(criteria, list):
        raise _bad("image criteria are a list of ImageCriterion objects", field)
    if len(criteria) > MAX_CRITERIA:
        raise _bad(f"{len(criteria)} criteria given; the limit is {MAX_CRITERIA}", field)
    members = list(ec2_model.shape("ImageCriterionRequest").members)
    checked = []
    for index, criterion in enumerate(criteria):
        where = f"{field}[{index}]"
        if not isinstance(criterion, dict) or not criterion:
            raise _bad("a criterion with no members matches nothing; give ImageProviders, ImageNames, "
                       "CreationDateCondition, …", where)
        for member in criterion:
            if member in NOT_EVALUATED:
                raise _bad(f"kiln does not evaluate {member} yet", f"{where}.{member}")
            if member not in members and member not in KILN_MEMBERS:
                raise _bad(f"unknown member {member!r}; use {', '.join([*members, *KILN_MEMBERS])}",
                           f"{where}.{member}")
        out: dict[str, Any] = {}
        for member, value in criterion.items():
            at = f"{where}.{member}"
            if member == "ImageProviders":
                out[member] = _providers(value, at)
            elif member == "ImageNames":
                out[member] = _names(value, at)
            elif member == "MarketplaceProductCodes":
                out[member] = _codes(value, at)
            elif member == "CreationDateCondition":
                out[member] = _days(value, "MaximumDaysSinceCreated", at)
            elif member == "DeprecationTimeCondition":
                out[member] = _days(value, "MaximumDaysSinceDeprecated", at)
            elif member == "RequiredTags":
                out[member] = _required_tags(value, at)
            elif member == "ImageWatermarks":
                out[member] = _watermark_filters(value, at)
            else:  # PatchedWithinDays
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise _bad("PatchedWithinDays is a whole number of days, 0 or more", at)
                out[member] = value
        checked.append(out)
    return checked


def _older(moment: datetime, days: int, now: datetime) -> bool:
    return now - moment > timedelta(days=days)


def mismatch(criterion: dict[str, Any], image: Any, caller: str, now: datetime) -> str | None:
    """Why ``image`` (a store ``ImageInfo`` as the caller sees it) fails ``criterion``; None if it matches."""
    providers = criterion.get("ImageProviders")
    if providers is not None:
        owner = image.owner_id
        if not any(provider == owner or provider == image.owner_alias or (provider == "none" and owner == caller)
                   for provider in providers):
            return f"provider {image.owner_alias or owner} is not one of {', '.join(providers)}"
    names = criterion.get("ImageNames")
    if names is not None and not any(fnmatchcase(image.name, pattern) for pattern in names):
        return f"name {image.name!r} matches none of {', '.join(names)}"
    if criterion.get("MarketplaceProductCodes"):
        return "it has no marketplace product code"
    created = criterion.get("CreationDateCondition")
    if created is not None and _older(image.creation_date, created["MaximumDaysSinceCreated"], now):
        age = (now - image.creation_date).days
        return f"created {age} days ago, more than {created['MaximumDaysSinceCreated']}"
    deprecated = criterion.get("DeprecationTimeCondition")
    if deprecated is not None and image.deprecation_time is not None and image.deprecation_time <= now:
        limit = deprecated["MaximumDaysSinceDeprecated"]
        if limit == 0 or _older(image.deprecation_time, limit, now):
            return f"deprecated since {image.deprecation_time:%Y-%m-%d}, more than {limit} days"
    patched = criterion.get("PatchedWithinDays")
    if patched is not None and _older(image.creation_date, patched, now):
        age = (now - image.creation_date).days
        return f"patched {age} days ago (its build date), more than {patched}"
    for tag in criterion.get("RequiredTags") or []:
        if image.tags.get(tag["Key"]) != tag["Value"]:
            return f"tag {tag['Key']}={tag['Value']} is missing"
    marks = criterion.get("ImageWatermarks")
    if marks is not None and not any(_watermark_matches(f, mark, now) for f in marks for mark in image.watermarks):
        if not image.watermarks:
            return "it has no watermark"
        keys = ", ".join(mark.key for mark in image.watermarks)
        return f"no watermark ({keys}) matches the criterion's watermark filters"
    return None


def _watermark_matches(wanted: dict[str, Any], mark: Any, now: datetime) -> bool:
    """One watermark meets every member the filter gives."""
    if "WatermarkKey" in wanted and not fnmatchcase(mark.key, wanted["WatermarkKey"]):
        return False
    if "SourceImageRegion" in wanted and not fnmatchcase(mark.source_image_region, wanted["SourceImageRegion"]):
        return False
    source_age = wanted.get("MaximumDaysSinceSourceImageCreated")
    if source_age is not None and _older(mark.source_image_creation_time, source_age, now):
        return False
    mark_age = wanted.get("MaximumDaysSinceWatermarkCreated")
    return mark_age is None or not _older(mark.watermark_creation_time, mark_age, now)


def judge(criteria: Sequence[dict[str, Any]], image: Any, caller: str, now: datetime) -> tuple[bool, str]:
    """(allowed, why): allowed by the first criterion it matches, else every criterion's reason."""
    reasons = []
    for index, criterion in enumerate(criteria):
        why = mismatch(criterion, image, caller, now)
        if why is None:
            return True, f"matches criterion {index + 1}"
        reasons.append(f"criterion {index + 1}: {why}")
    return False, "; ".join(reasons) or "there are no image criteria"
