"""The real thing: the Debian bookworm minbase parent's package database, its purls and its SBOMs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from debian.debian_support import Version
from packageurl import PackageURL
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from tests.conftest import Kiln

pytestmark = [pytest.mark.network, pytest.mark.slow]


def test_bookworm_minbase(kiln: Kiln, bootstrap_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kiln.store.api import bootstrap_image

    monkeypatch.setenv("KILN_BOOTSTRAP_CACHE", str(bootstrap_cache))
    ami = bootstrap_image("debian:bookworm")
    result = kiln("image", "packages", ami, "--output", "json")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)["imagePackageList"]
    by_name = {record["name"]: record for record in records}
    assert len(records) > 80 and {"dpkg", "apt", "libc6", "base-files", "bash"} <= set(by_name)
    assert {record["ecosystem"] for record in records} == {"Debian:12"}
    assert by_name["libc6"]["source_name"] == "glibc"
    assert Version(by_name["libc6"]["version"]) >= Version("2.36-9")
    for record in records:
        purl = PackageURL.from_string(record["purl"])
        assert (purl.type, purl.namespace, purl.name, purl.version) == ("deb", "debian", record["name"],
                                                                          record["version"])
        assert purl.qualifiers["distro"] == "debian-12" and purl.qualifiers["arch"] == record["architecture"]

    spdx = kiln("image", "sbom", ami, "--format", "spdx-json").stdout
    document = JsonLikeDictParser().parse(json.loads(spdx))
    assert validate_full_spdx_document(document) == []
    assert len(document.packages) == len(records) + 1
    cyclonedx = kiln("image", "sbom", ami, "--format", "cyclonedx-json").stdout
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(cyclonedx) is None
    assert kiln("image", "sbom", ami, "--format", "spdx-json").stdout == spdx
