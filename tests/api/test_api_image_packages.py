"""ListImagePackages over the wire: the build's recorded inventory in Image Builder's shape, paged."""

from __future__ import annotations

import pytest
from tests.api.conftest import Server

from kiln.model.packages import InstalledPackage
from kiln.services.builds import records


def test_list_image_packages(server: Server) -> None:
    arn = records.create_image(name="web", version="1.0.0", recipe_arn="arn:aws:imagebuilder:local:123456789012:"
                               "image-recipe/web/1.0.0", infrastructure_arn="arn:aws:imagebuilder:local:"
                               "123456789012:infrastructure-configuration/web")
    installed = [InstalledPackage(f"pkg{i}", f"1.{i}", "amd64", "src", "1", "Debian:12",
                                  f"pkg:deb/debian/pkg{i}@1.{i}?arch=amd64") for i in range(30)]
    records.update(arn, packages=[package.as_json() for package in installed])
    client = server.client()
    pages = list(client.get_paginator("list_image_packages").paginate(imageBuildVersionArn=arn))
    listed = [entry for page in pages for entry in page["imagePackageList"]]
    assert len(pages) > 1
    assert listed == [{"packageName": p.name, "packageVersion": p.version} for p in installed]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_image_packages(imageBuildVersionArn=arn.replace("/web/", "/nope/"))
