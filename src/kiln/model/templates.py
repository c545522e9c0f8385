"""Image Builder's output-name template variables.

``{{ imagebuilder:buildDate }}`` becomes the build time as ISO 8601 UTC with ``:`` replaced by ``-``
and milliseconds (``2020-02-18T22-49-08.131Z``); ``{{ imagebuilder:buildVersion }}`` becomes the
image build number. Spaces inside the braces are allowed. Any other ``imagebuilder:`` variable is an
error, so a typo fails when the distribution configuration is created, not at build time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from kiln.errors import InvalidInput

VARIABLES = ("buildDate", "buildVersion")
_REFERENCE = re.compile(r"\{\{\s*imagebuilder:([A-Za-z]+)\s*\}\}")
_ANY_REFERENCE = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")


def check_name_template(template: str) -> None:
    """Raise ValueError when the template uses a variable Image Builder does not define."""
    for match in _ANY_REFERENCE.finditer(template):
        expression = match.group(1)
        variable = expression.removeprefix("imagebuilder:")
        if not expression.startswith("imagebuilder:") or variable not in VARIABLES:
            known = ", ".join(f"{{{{ imagebuilder:{name} }}}}" for name in VARIABLES)
            raise ValueError(f"unknown template variable {{{{ {expression} }}}} (known: {known})")


def format_build_date(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H-%M-%S.") + f"{moment.microsecond // 1000:03d}Z"


def expand_name(template: str, *, build_date: datetime, build_version: int) -> str:
    """Render an AMI name template for one build."""
    try:
        check_name_template(template)
    except ValueError as error:
        raise InvalidInput(str(error), location="amiDistributionConfiguration.name") from None
    values = {"buildDate": format_build_date(build_date), "buildVersion": str(build_version)}
    return _REFERENCE.sub(lambda match: values[match.group(1)], template)
