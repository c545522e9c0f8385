"""A build's network actions obey its infrastructure configuration: a host-side HTTP server on loopback
is never reached from a build (no network, or the network without host-local addresses), unless the
configuration allows host-local addresses."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator

import pytest

from kiln.services.builds.workflow import BuildFailed, create_and_build

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")


@pytest.fixture
def host_service() -> Iterator[tuple[str, list[str]]]:
    """A service on the host's loopback holding a secret, and the paths it was asked for."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = b"host secret\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/latest/meta-data/iam", asked
    finally:
        server.shutdown()
        server.server_close()


def _recipe(parent_ami: str, url: str, infrastructure: dict) -> dict[str, str]:
    from kiln.services.components.resource import create_component
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration
    from kiln.services.recipes.resource import create_image_recipe

    document = f"""name: fetch
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Fetch
        action: WebDownload
        inputs:
          - source: {url}
            destination: /etc/baked-secret
"""
    component = create_component({"name": "fetch", "semanticVersion": "1.0.0", "platform": "Linux",
                                   "data": document})
    recipe = create_image_recipe({"name": "net", "semanticVersion": "1.0.0", "parentImage": parent_ami,
                                  "components": [{"componentArn": component["componentBuildVersionArn"]}]})
    infra = create_infrastructure_configuration({"name": "infra", "instanceProfileName": "builder", **infrastructure})
    return {"recipe": recipe["imageRecipeArn"], "infrastructure": infra["infrastructureConfigurationArn"]}


@pytest.mark.parametrize(
    ("infrastructure", "why"),
    [({"subnetId": "none"}, "the instance has no network"), ({}, "is a host-local address")],
)
def test_a_build_cannot_reach_the_hosts_local_services(
    parent_ami: str, host_service: tuple[str, list[str]], infrastructure: dict, why: str
) -> None:
    url, asked = host_service
    arns = _recipe(parent_ami, url, infrastructure)
    with pytest.raises(BuildFailed) as caught:
        create_and_build(recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"], tests_enabled=False)
    assert f"step Fetch failed: {url}: refused: 127.0.0.1" in str(caught.value)  # the step and the address
    assert why in str(caught.value)
    assert asked == []  # not one request reached the host's service


def test_a_configuration_may_allow_host_local_addresses(
    parent_ami: str, host_service: tuple[str, list[str]]
) -> None:
    url, asked = host_service
    arns = _recipe(parent_ami, url, {"tags": {"kiln:HostLocalNetwork": "allow"}})
    image = create_and_build(recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"],
                             tests_enabled=False)
    assert image["state"]["status"] == "AVAILABLE"
    assert asked == ["/latest/meta-data/iam"]
