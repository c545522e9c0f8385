"""SPDX 2.3 JSON for an image: the image as the described package, each installed package contained in it.

Everything derives from the image: the namespace from its manifest digest, ``created`` from its
creation date, ids from the packages' order, so the same image always gives the same bytes.
"""

from __future__ import annotations

from typing import Any

from kiln.model.packages import InstalledPackage
from kiln.services.inventory.subject import TOOL, SbomSubject, encode_document, safe_id, source_note

NAMESPACE_BASE = "https://kiln.invalid/spdx"  # .invalid: a URI that names, never resolves
IMAGE_ID = "SPDXRef-Image"
NOASSERTION = "NOASSERTION"


def _package(spdx_id: str, package: InstalledPackage) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": package.name,
        "versionInfo": package.version,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "sourceInfo": source_note(package),
        "externalRefs": [
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": package.purl},
        ],
    }
    if package.architecture:
        entry["comment"] = f"architecture {package.architecture}"
    return entry


def spdx_json(subject: SbomSubject) -> bytes:
    inventory = subject.inventory
    image: dict[str, Any] = {
        "SPDXID": IMAGE_ID,
        "name": subject.name,
        "versionInfo": subject.manifest_digest,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": subject.digest_hex}],
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "comment": f"{subject.ami_id} ({subject.region}, {subject.architecture}); "
                   f"OS {inventory.os.pretty_name or inventory.os.id or 'unknown'}; "
                   f"ecosystem {inventory.ecosystem or 'unknown'}; read from {', '.join(inventory.databases)}",
    }
    packages = [image]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": IMAGE_ID}]
    for index, package in enumerate(inventory.packages, 1):
        spdx_id = f"SPDXRef-Package-{index}-{safe_id(package.name)}"
        packages.append(_package(spdx_id, package))
        relationships.append({"spdxElementId": IMAGE_ID, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": spdx_id})
    document = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{subject.ami_id} {subject.name}",
        "documentNamespace": f"{NAMESPACE_BASE}/{subject.region}/{subject.ami_id}-{subject.digest_hex}",
        "creationInfo": {"created": subject.timestamp, "creators": [f"Tool: {TOOL}"]},
        "documentDescribes": [IMAGE_ID],
        "packages": packages,
        "relationships": relationships,
    }
    return encode_document(document)
