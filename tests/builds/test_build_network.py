"""A build obeys its infrastructure configuration's network: a host-side HTTP server on loopback is never
reached from a build (no network, or the network without host-local addresses), neither by its network
actions (host side) nor by its commands (in the instance's own network namespace), unless the
configuration allows host-local addresses."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.services.builds.workflow import BuildFailed, create_and_build

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")
HOST_ALIAS = "10.0.2.2"  # the host as an instance on the network sees it (kiln.runtime.netns)


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


def _download(url: str) -> str:
    """A component whose step downloads ``url`` on the host side (WebDownload)."""
    return f"""name: fetch
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


def _command(command: str) -> str:
    """A component whose step runs ``command`` inside the build instance (ExecuteBash)."""
    return f"""name: fetch
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Fetch
        action: ExecuteBash
        inputs:
          commands:
            - {command}
"""


def _recipe(parent_ami: str, url: str, infrastructure: dict, document: str | None = None) -> dict[str, str]:
    from kiln.services.components.resource import create_component
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration
    from kiln.services.recipes.resource import create_image_recipe

    document = document or _download(url)
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


def _from_inside(url: str) -> str:
    """``url`` of the host's loopback as a command in the instance names it: through the NAT's host alias
    (the instance's own 127.0.0.1 is its own loopback)."""
    return url.replace("127.0.0.1", HOST_ALIAS)


def test_a_build_command_cannot_reach_the_hosts_local_services(
    parent_ami: str, host_service: tuple[str, list[str]]
) -> None:
    url, asked = host_service
    fetch = f"wget -q -O /etc/baked-secret {_from_inside(url)} || wget -q -O /etc/baked-secret {url}"
    arns = _recipe(parent_ami, url, {}, _command(fetch))
    with pytest.raises(BuildFailed) as caught:
        create_and_build(recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"], tests_enabled=False)
    assert "step Fetch failed" in str(caught.value)
    assert asked == []  # not one request reached the host's service


def test_a_build_command_reaches_the_hosts_loopback_when_the_configuration_allows_it(
    parent_ami: str, host_service: tuple[str, list[str]]
) -> None:
    url, asked = host_service
    arns = _recipe(parent_ami, url, {"tags": {"kiln:HostLocalNetwork": "allow"}},
                   _command(f"wget -q -O /etc/baked-secret {_from_inside(url)}"))
    image = create_and_build(recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"],
                             tests_enabled=False)
    assert image["state"]["status"] == "AVAILABLE"
    assert asked == ["/latest/meta-data/iam"]


def test_a_killed_build_leaves_no_network_helper(parent_ami: str, kiln, kiln_home: Path) -> None:
    from kiln.db.engine import reset_engines
    from kiln.runtime import instances, procs
    from kiln.services.builds.records import get_image, list_images

    arns = _recipe(parent_ami, "", {}, _command("sleep 60"))
    build = subprocess.Popen(
        [sys.executable, "-m", "kiln", "image", "create", "--recipe", arns["recipe"],
         "--infrastructure", arns["infrastructure"], "--no-tests"],
        env={**os.environ, "KILN_HOME": str(kiln_home)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (running := instances.list_instances(states=("running",))) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert running, "the build never started its instance"
        (instance,) = running
        helper = instance.network_helper
        assert helper is not None and procs.is_alive(helper.pid, helper.start_time)
        namespace = os.stat(f"/proc/{instance.init.pid}/ns/net").st_ino  # type: ignore[union-attr]
    finally:
        build.kill()  # SIGKILL: no clean-up code runs
        build.wait()
    reset_engines()  # the next kiln command opens the database afresh, which runs recovery
    assert kiln("image", "builds", "--output", "json").exit_code == 0
    assert get_image(list_images(name="net")[-1]["arn"])["state"]["status"] == "FAILED"
    assert instances.get(instance.id).state == "terminated"
    assert not procs.is_alive(helper.pid, helper.start_time)
    assert _members_of_netns(namespace) == []


def _members_of_netns(inode: int) -> list[int]:
    from kiln.runtime import procs

    found = []
    for pid in procs.all_pids():
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino == inode:
                found.append(pid)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found
