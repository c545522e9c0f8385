"""Organization and organizational-unit ARNs: the one pattern of each that kiln checks.

The patterns are botocore ``imagebuilder``'s ``OrganizationArn`` / ``OrganizationalUnitArn`` (a test
holds them equal; loading the model at import would cost every command ~0.2 s). The OU pattern is
anchored at its end too: botocore's is not, which would let trailing text through.
"""

from __future__ import annotations

import re

ORGANIZATION_ARN_PATTERN = r"^arn:aws[^:]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$"
OU_ARN_PATTERN = r"^arn:aws[^:]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}$"

ORGANIZATION_ARN = re.compile(ORGANIZATION_ARN_PATTERN)
OU_ARN = re.compile(OU_ARN_PATTERN)
