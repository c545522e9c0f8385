"""EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE: each kind of dependency, skip or run.

Real components, recipes and image rows in the database; the OS check reads Release files from a
mirror stub on 127.0.0.1. The build is the StandInRunner (see conftest).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tests.pipelines.conftest import (
    AMI,
    SELF,
    StandInRunner,
    available_image,
    component,
    infrastructure,
    pipeline,
    recipe,
)

from kiln.services.pipelines.dependencies import OsCheckFailed, os_release_marker, os_updates_since
from kiln.services.pipelines.resource import get_image_pipeline, update_image_pipeline
from kiln.services.pipelines.runs import list_pipeline_executions, run_scheduled

START = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
SCHEDULE = {"scheduleExpression": "cron(0 3 * * ? *)"}  # the default condition: dependency updates


def runs(arn: str, runner: StandInRunner, count: int) -> list[tuple[str, str]]:
    out = []
    for day in range(count):
        execution = run_scheduled(arn, START + timedelta(days=len(runner.calls) + day * 7), runner=runner)
        out.append((execution.decision, execution.reason or ""))
    return out


def test_default_condition_is_dependency_updates() -> None:
    component("app", "1.0.0")
    arn = pipeline("pipe", recipe("web", "1.0.0", AMI, ["component/app/1.0.0"]), infrastructure(), schedule=SCHEDULE)
    got = get_image_pipeline(arn)["imagePipeline"]["schedule"]
    assert got["pipelineExecutionStartCondition"] == "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE"


def test_component_wildcard_newer_build_runs(runner: StandInRunner) -> None:
    component("app", "1.0.0")
    component("app", "2.0.0")  # outside the 1.x.x filter
    arn = pipeline("pipe", recipe("web", "1.0.0", AMI, [f"{SELF}:component/app/1.x.x"]), infrastructure(),
                   schedule=SCHEDULE)
    [(first, why_first), (second, why_second)] = runs(arn, runner, 2)
    assert (first, why_first) == ("STARTED", "the pipeline has no successful image yet")
    assert second == "SKIPPED"
    assert why_second.startswith("no dependency updates since")
    component("app", "1.1.0")
    [(third, why_third)] = runs(arn, runner, 1)
    assert third == "STARTED"
    assert f"{SELF}:component/app/1.1.0/1" in why_third
    assert len(runner.calls) == 2


def test_pinned_component_never_counts(runner: StandInRunner) -> None:
    component("app", "1.0.0")
    arn = pipeline("pipe", recipe("web", "1.0.0", AMI, [f"{SELF}:component/app/1.0.0"]), infrastructure(),
                   schedule=SCHEDULE)
    runs(arn, runner, 1)
    component("app", "1.1.0")
    assert [decision for decision, _ in runs(arn, runner, 2)] == ["SKIPPED", "SKIPPED"]


def test_parent_image_wildcard_newer_image_runs(runner: StandInRunner) -> None:
    available_image("base", "1.0.0", "ami-00000000000000001")
    component("app", "1.0.0")
    arn = pipeline("pipe", recipe("web", "1.0.0", f"{SELF}:image/base/1.x.x", ["component/app/1.0.0"]),
                   infrastructure(), schedule=SCHEDULE)
    assert [d for d, _ in runs(arn, runner, 2)] == ["STARTED", "SKIPPED"]
    available_image("base", "1.2.0", "ami-00000000000000002")
    [(decision, reason)] = runs(arn, runner, 1)
    assert decision == "STARTED"
    assert "ami-00000000000000002" in reason and "ami-00000000000000001" in reason
    available_image("base", "2.0.0", "ami-00000000000000003")  # outside 1.x.x
    assert [d for d, _ in runs(arn, runner, 1)] == ["SKIPPED"]


def test_ssm_parent_runs_when_the_parameter_holds_another_ami(runner: StandInRunner, busybox_dir) -> None:
    from kiln.services.parameters.parameter_store import put_parameter
    from kiln.store.api import import_rootfs

    first, second = (import_rootfs(busybox_dir, name=f"base-{n}") for n in (1, 2))
    put_parameter("/golden/base", first, data_type="aws:ec2:image")
    component("app", "1.0.0")
    arn = pipeline("pipe", recipe("web", "1.0.0", "ssm:/golden/base", ["component/app/1.0.0"]), infrastructure(),
                   schedule=SCHEDULE)
    assert [d for d, _ in runs(arn, runner, 2)] == ["STARTED", "SKIPPED"]
    put_parameter("/golden/base", second, data_type="aws:ec2:image", overwrite=True)
    [(decision, reason)] = runs(arn, runner, 1)
    assert decision == "STARTED"
    assert reason == f"parent parameter ssm:/golden/base now holds {second} (the last image used {first})"


def test_ami_parent_never_changes(runner: StandInRunner) -> None:
    component("app", "1.0.0")
    arn = pipeline("pipe", recipe("web", "1.0.0", AMI, ["component/app/1.0.0"]), infrastructure(), schedule=SCHEDULE)
    available_image("other", "1.0.0", "ami-00000000000000009")
    assert [d for d, _ in runs(arn, runner, 3)] == ["STARTED", "SKIPPED", "SKIPPED"]


def test_recipe_wildcard_newer_version_runs(runner: StandInRunner) -> None:
    component("app", "1.0.0")
    recipe("web", "1.0.0", AMI, ["component/app/1.0.0"])
    arn = pipeline("pipe", f"{SELF}:image-recipe/web/x.x.x", infrastructure(), schedule=SCHEDULE)
    assert [d for d, _ in runs(arn, runner, 2)] == ["STARTED", "SKIPPED"]
    recipe("web", "1.1.0", AMI, ["component/app/1.0.0"])
    [(decision, reason)] = runs(arn, runner, 1)
    assert decision == "STARTED"
    assert "image-recipe/web/1.1.0" in reason
    assert runner.calls[-1]["image"] == f"{SELF}:image/web/1.1.0/1"


def test_failed_build_is_not_a_baseline(runner: StandInRunner) -> None:
    component("app", "1.0.0")
    arn = pipeline("pipe", recipe("web", "1.0.0", AMI, ["component/app/1.0.0"]), infrastructure(), schedule=SCHEDULE)
    runner.outcomes = ["FAILED"]
    assert [d for d, _ in runs(arn, runner, 3)] == ["STARTED", "STARTED", "SKIPPED"]


# --- OS package updates over a local mirror ---------------------------------------------------


class Mirror:
    """Serves ``/debian/dists/<suite>/Release`` and ``/security/dists/<suite>/Release`` from a dict."""

    def __init__(self) -> None:
        self.dates: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                mirror.requests.append((self.path, self.headers.get("Range")))
                date = mirror.dates.get(self.path)
                if date is None:
                    self.send_error(404)
                    return
                body = (f"Origin: Debian\nSuite: x\nDate: {date}\nArchitectures: amd64\n\n"
                        + "SHA256:\n" + " 0" * 5000 + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mirror]:
    served = Mirror()
    monkeypatch.setenv("KILN_DEBIAN_MIRROR", f"{served.url}/debian")
    monkeypatch.setenv("KILN_DEBIAN_SECURITY_MIRROR", f"{served.url}/security")
    served.dates = {
        "/debian/dists/bookworm/Release": "Sat, 08 Nov 2026 10:00:00 UTC",
        "/security/dists/bookworm-security/Release": "Mon, 24 Nov 2026 08:00:00 UTC",
        # no bookworm-updates on this mirror: left out of the marker
    }
    yield served
    served.stop()


def test_release_marker_reads_the_head_of_each_release_file(mirror: Mirror) -> None:
    marker = os_release_marker("debian", "bookworm")
    assert marker == {
        f"{mirror.url}/debian/dists/bookworm/Release": "Sat, 08 Nov 2026 10:00:00 UTC",
        f"{mirror.url}/security/dists/bookworm-security/Release": "Mon, 24 Nov 2026 08:00:00 UTC",
    }
    assert all(header == "bytes=0-8191" for _, header in mirror.requests)
    assert os_updates_since(marker, marker) is None
    newer = {**marker, f"{mirror.url}/security/dists/bookworm-security/Release": "Tue, 25 Nov 2026 08:00:00 UTC"}
    assert "bookworm-security" in (os_updates_since(marker, newer) or "")


def test_unreachable_mirror_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
    monkeypatch.setenv("KILN_DEBIAN_SECURITY_MIRROR", "http://127.0.0.1:9/security")
    with pytest.raises(OsCheckFailed):
        os_release_marker("debian", "bookworm")


def test_bootstrap_parent_runs_when_the_mirror_has_updates(mirror: Mirror, runner: StandInRunner) -> None:
    component("app", "1.0.0")
    arn = pipeline("pipe", recipe("web", "1.0.0", "debian:bookworm", ["component/app/1.0.0"]), infrastructure(),
                   schedule=SCHEDULE)
    assert [d for d, _ in runs(arn, runner, 2)] == ["STARTED", "SKIPPED"]
    mirror.dates["/security/dists/bookworm-security/Release"] = "Thu, 27 Nov 2026 08:00:00 UTC"
    [(decision, reason)] = runs(arn, runner, 1)
    assert decision == "STARTED"
    assert "OS package updates" in reason and "bookworm-security" in reason
    assert [d for d, _ in runs(arn, runner, 1)] == ["SKIPPED"]
    # A mirror that goes away: the run fails to start, and that counts as a failure.
    mirror.dates.clear()
    [(decision, reason)] = runs(arn, runner, 1)
    assert decision == "FAILED_TO_START"
    assert "cannot check dependency updates" in reason
    assert get_image_pipeline(arn)["imagePipeline"]["consecutiveFailures"] == 1
    assert [e["decision"] for e in list_pipeline_executions(arn)] == [
        "STARTED", "SKIPPED", "STARTED", "SKIPPED", "FAILED_TO_START"]
    # A change that decides by itself does not need the mirror.
    component("app", "1.0.1")
    recipe("web", "1.0.1", "debian:bookworm", ["component/app/1.0.1"])
    update_image_pipeline({"imagePipelineArn": arn, "imageRecipeArn": "image-recipe/web/1.x.x",
                           "infrastructureConfigurationArn": "infrastructure-configuration/build-infra",
                           "schedule": SCHEDULE})
    [(decision, reason)] = runs(arn, runner, 1)
    assert decision == "STARTED" and "image-recipe/web/1.0.1" in reason
