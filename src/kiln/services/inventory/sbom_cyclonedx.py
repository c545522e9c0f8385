"""CycloneDX 1.6 JSON for an image: the image as the BOM's subject component, its OS and packages as
components. serialNumber is a name-based UUID of the manifest digest and the timestamp the image's
creation date, so the same image always gives the same bytes."""

from __future__ import annotations

import uuid
from typing import Any

from kiln.model.packages import InstalledPackage
from kiln.services.inventory.subject import TOOL, SbomSubject, encode_document

SCHEMA = "http://cyclonedx.org/schema/bom-1.6.schema.json"
SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://kiln.invalid/cyclonedx")


def _properties(package: InstalledPackage) -> list[dict[str, str]]:
    values = [("kiln:package:architecture", package.architecture),
              ("kiln:package:ecosystem", package.ecosystem),
              ("kiln:package:sourceName", package.source_name),
              ("kiln:package:sourceVersion", package.source_version)]
    return [{"name": name, "value": value} for name, value in values if value]


def _component(package: InstalledPackage) -> dict[str, Any]:
    return {
        "type": "library",
        "bom-ref": package.purl,
        "name": package.name,
        "version": package.version,
        "purl": package.purl,
        "properties": _properties(package),
    }


def cyclonedx_json(subject: SbomSubject) -> bytes:
    inventory = subject.inventory
    image_ref = f"image:{subject.manifest_digest}"
    components: list[dict[str, Any]] = []
    os_ref = None
    if inventory.os.id:
        os_ref = f"os:{inventory.os.id}:{inventory.os.version_id}"
        components.append({"type": "operating-system", "bom-ref": os_ref, "name": inventory.os.id,
                           "version": inventory.os.version_id or "unknown",
                           **({"description": inventory.os.pretty_name} if inventory.os.pretty_name else {})})
    seen: set[str] = set()
    for package in inventory.packages:
        component = _component(package)
        if component["bom-ref"] in seen:  # bom-refs are unique; a package listed twice keeps both rows
            component["bom-ref"] = f"{package.purl}#{len(components)}"
        seen.add(component["bom-ref"])
        components.append(component)
    document = {
        "$schema": SCHEMA,
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid5(SERIAL_NAMESPACE, subject.manifest_digest)}",
        "version": 1,
        "metadata": {
            "timestamp": subject.timestamp,
            "tools": {"components": [{"type": "application", "name": TOOL}]},
            "component": {
                "type": "container",
                "bom-ref": image_ref,
                "name": subject.name,
                "version": subject.manifest_digest,
                "hashes": [{"alg": "SHA-256", "content": subject.digest_hex}],
                "properties": [{"name": "kiln:image:id", "value": subject.ami_id},
                               {"name": "kiln:image:region", "value": subject.region},
                               {"name": "kiln:image:architecture", "value": subject.architecture}],
            },
        },
        "components": components,
        "dependencies": [{"ref": image_ref, "dependsOn": [c["bom-ref"] for c in components]}],
    }
    return encode_document(document)
