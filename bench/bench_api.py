"""``kiln serve`` under load: requests per second and p50/p99 latency with 16 concurrent clients, and the
first request after start.

A real ``kiln serve --port 0`` process over a temporary KILN_HOME holding 1,000 AMIs (one imported, 999
copies through the services) and one Image Builder image. Clients are two processes of eight threads,
each thread one keep-alive HTTP connection sending requests signed once with SigV4 (a signature stays
valid for five minutes; the server verifies every request in full). Calls, each for ``DURATION`` s:

- ``health``: ``GET /health``, no signature, no thread hop, no database: the server's floor, so the
  other figures read as a ratio to what the same uvicorn process can do at all on this machine;
- ``get_image``: Image Builder GetImage (rest-json);
- ``describe_images_page``: EC2 DescribeImages ``Owners=self``, ``MaxResults=100`` over the 1,000 AMIs;
- ``describe_images_all``: the same without MaxResults (all 1,000 AMIs in one answer, about 1 MB of XML).

The same two DescribeImages calls go to moto's server (``python -m moto.server``, 1,000 AMIs registered
through boto3) in the same run: ``*_vs_moto`` is kiln's rate over moto's.

Each load also records the server's CPU time per request (from /proc): on this shared machine the wall-clock
figures say how long a request waited, the CPU figure what it cost.

Beside a writer: ``get_image`` and ``describe_images_page`` again while another connection commits every
``WRITER_PERIOD`` s, holding the write lock for half of it (as a build recording its steps would), on the
server as it is (``*_beside_writer_*``: reads take no write lock) and on a second server started with
``KILN_API_READ_ONLY=0`` (reads open their units of work with ``BEGIN IMMEDIATE``, one at a time and
after the writer, as before), interleaved: ``*_beside_writer_vs_write_locked`` is the ratio, and
``*_writer_commits_per_s`` how often the writer got to commit meanwhile. After each commit the answers
kept per store generation are checked again: DescribeImages asks the change log which AMIs changed (the
writer's row changes none, so one statement) and reads only those again.

``KILN_BENCH_API_CALLS=describe_images_page,get_image`` measures only those calls, on one server, and
nothing else (no first requests, writer or moto): to compare a change's CPU per request quickly; the
result says ``"partial": true``.

Goals (issue 14): ≥ 1,000 req/s for reads and p99 < 50 ms on this machine. First request: the time from
``kiln serve`` being ready (its "listening" line) to the answer of the first DescribeImages and GetImage,
with the API's start-up preloading (``warm``) and without it (``KILN_API_PRELOAD=0``), same run.
"""

from __future__ import annotations

import http.client
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

AMIS = 1000
DURATION = 5.0
PROCESSES, THREADS = 2, 8
LISTENING = "kiln serve listening on "
ACCOUNT = "123456789012"
MOTO_REGION = "us-east-1"
BESIDE_WRITER = ("get_image", "describe_images_page")
WRITER_PERIOD = 0.04

Call = tuple[str, str, bytes, dict[str, str]]  # method, path?query, body, headers


def _setup(home: Path) -> tuple[dict[str, str], str, str]:
    """(access key, an image build ARN, one AMI id) in a fresh KILN_HOME with AMIS AMIs."""
    os.environ["KILN_HOME"] = str(home)
    from kiln.services.startup import install

    install()
    from kiln.services.accounts.accounts import create_access_key
    from kiln.services.builds import records
    from kiln.services.ec2 import images
    from kiln.store import api
    from kiln.store.busybox import busybox_rootfs

    key = create_access_key(ACCOUNT)
    ami = api.import_rootfs(busybox_rootfs(home / "busybox"), name="bench-0000")
    for number in range(1, AMIS):
        images.copy_image(ami, name=f"bench-{number:04d}")
    arn = records.create_image(name="web", version="1.0.0",
                               recipe_arn=f"arn:aws:imagebuilder:local:{ACCOUNT}:image-recipe/web/1.0.0",
                               infrastructure_arn=f"arn:aws:imagebuilder:local:{ACCOUNT}:infrastructure-configuration/b")
    records.finish_available(arn, [{"region": "local", "image": ami}])
    return key, arn, ami


def _signed(endpoint: str, key: dict[str, str], service: str, method: str, path: str, body: bytes,
            headers: dict[str, str], region: str = "local") -> Call:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=endpoint + path, data=body, headers=headers)
    SigV4Auth(Credentials(key["AccessKeyId"], key["SecretAccessKey"]), service, region).add_auth(request)
    prepared = request.prepare()
    target = prepared.url.removeprefix(endpoint)
    return method, target, body, {k: v for k, v in prepared.headers.items() if k.lower() != "host"}


def _calls(endpoint: str, key: dict[str, str], arn: str, region: str = "local") -> dict[str, Call]:
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    describe = "Action=DescribeImages&Version=2016-11-15&Owner.1=self"
    return {
        "health": ("GET", "/health", b"", {}),
        "get_image": _signed(endpoint, key, "imagebuilder", "GET",
                             "/GetImage?imageBuildVersionArn=" + urllib.parse.quote(arn, safe=""), b"", {}),
        "describe_images_page": _signed(endpoint, key, "ec2", "POST", "/", f"{describe}&MaxResults=100".encode(),
                                        form, region),
        "describe_images_all": _signed(endpoint, key, "ec2", "POST", "/", describe.encode(), form, region),
    }


def _moto(key: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """moto's server with AMIS AMIs of its default account, registered through boto3."""
    import boto3

    from bench.moto_server import start_moto

    process, endpoint = start_moto()
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=MOTO_REGION, aws_access_key_id=key["AccessKeyId"],
                       aws_secret_access_key=key["SecretAccessKey"])
    for number in range(AMIS):
        ec2.register_image(Name=f"bench-{number:04d}", RootDeviceName="/dev/xvda", Architecture="x86_64")
    return process, endpoint


@contextmanager
def _writer(database: Path) -> Iterator[list[int]]:
    """Another connection committing every WRITER_PERIOD s and holding the write lock half of that time,
    for the block (its row, a tag of no resource, is seen by no call measured here); yields its count of
    commits so far (reads that take the write lock make it wait)."""
    stop = threading.Event()
    commits = [0]

    def write() -> None:
        connection = sqlite3.connect(database, isolation_level=None, timeout=60)
        number = 0
        while not stop.is_set():
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT OR REPLACE INTO store_tags (resource_id, key, value) VALUES (?, ?, ?)",
                               ("bench-writer", "n", str(number)))
            time.sleep(WRITER_PERIOD / 2)
            connection.execute("COMMIT")
            number += 1
            commits[0] = number
            time.sleep(WRITER_PERIOD / 2)
        connection.execute("DELETE FROM store_tags WHERE resource_id = 'bench-writer'")
        connection.close()

    thread = threading.Thread(target=write, name="bench-writer")
    thread.start()
    try:
        yield commits
    finally:
        stop.set()
        thread.join()


def _client(endpoint: str, call: Call, until: float) -> list[float]:
    """Latencies (s) of one thread's requests on one keep-alive connection until ``until``."""
    parsed = urllib.parse.urlsplit(endpoint)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    method, target, body, headers = call
    latencies = []
    while time.monotonic() < until:
        began = time.perf_counter()
        connection.request(method, target, body=body or None, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{target}: HTTP {response.status}")
        latencies.append(time.perf_counter() - began)
    connection.close()
    return latencies


def _process(endpoint: str, call: Call, until: float) -> list[float]:
    results: list[list[float]] = [[] for _ in range(THREADS)]

    def run(index: int) -> None:
        results[index] = _client(endpoint, call, until)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [latency for result in results for latency in result]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat utime and stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load(pool: ProcessPoolExecutor, endpoint: str, call: Call, server_pid: int) -> dict[str, float]:
    """Rate and latency percentiles, and the server's CPU time per request: on a machine other work
    shares, the CPU figure says what a request costs where wall-clock figures say what it waited."""
    cpu = _cpu_seconds(server_pid)
    began = time.monotonic()
    until = began + DURATION
    futures = [pool.submit(_process, endpoint, call, until) for _ in range(PROCESSES)]
    latencies = sorted(latency for future in futures for latency in future.result())
    elapsed = time.monotonic() - began

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1)

    cpu_ms = (_cpu_seconds(server_pid) - cpu) * 1000 / max(len(latencies), 1)
    return {"rps": round(len(latencies) / elapsed, 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "requests": len(latencies), "server_cpu_ms_per_request": round(cpu_ms, 2)}


def _start(home: Path, preload: bool, read_only: bool = True) -> tuple[subprocess.Popen[str], str, float]:
    env = {**os.environ, "KILN_HOME": str(home), "KILN_API_PRELOAD": "1" if preload else "0",
           "KILN_API_READ_ONLY": "1" if read_only else "0"}
    began = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "kiln", "serve", "--port", "0", "--no-scheduler"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith(LISTENING):
        process.kill()
        raise RuntimeError(f"kiln serve did not start: {line!r}")
    return process, line.removeprefix(LISTENING), time.monotonic() - began


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=60)


def _time_one(endpoint: str, call: Call) -> float:
    parsed = urllib.parse.urlsplit(endpoint)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    method, target, body, headers = call
    began = time.perf_counter()
    connection.request(method, target, body=body or None, headers=headers)
    response = connection.getresponse()
    response.read()
    elapsed = time.perf_counter() - began
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"{target}: HTTP {response.status}")
    return elapsed


def _items(endpoint: str, call: Call) -> int:
    """How many images one answer lists (so the figures compare answers of the same size)."""
    parsed = urllib.parse.urlsplit(endpoint)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    method, target, body, headers = call
    connection.request(method, target, body=body or None, headers=headers)
    answer = connection.getresponse().read()
    connection.close()
    return answer.count(b"<imageId>")


def _first_requests(home: Path, key: dict[str, str], arn: str, preload: bool) -> dict[str, float]:
    process, endpoint, ready = _start(home, preload)
    try:
        calls = _calls(endpoint, key, arn)
        first = _time_one(endpoint, calls["describe_images_page"])
        first_get = _time_one(endpoint, calls["get_image"])
        second = _time_one(endpoint, calls["describe_images_page"])
    finally:
        _stop(process)
    label = "preloaded" if preload else "not_preloaded"
    return {f"start_to_listening_s_{label}": round(ready, 2),
            f"first_describe_images_ms_{label}": round(first * 1000, 1),
            f"first_get_image_ms_{label}": round(first_get * 1000, 1),
            f"second_describe_images_ms_{label}": round(second * 1000, 1)}


def _uvicorn_http() -> str:
    """What uvicorn's "auto" picks in the server (the same interpreter and path): its C parser and
    uvloop when installed, else the pure-Python h11 and asyncio's loop."""
    from importlib.util import find_spec

    parser = "httptools" if find_spec("httptools") else "h11"
    return parser + ("+uvloop" if find_spec("uvloop") else "+asyncio")


def _only(home: Path, key: dict[str, str], arn: str, names: list[str]) -> dict[str, Any]:
    """The load figures of the calls ``names`` alone, on one server."""
    process, endpoint, _ = _start(home, preload=True)
    result: dict[str, Any] = {}
    try:
        calls = _calls(endpoint, key, arn)
        with ProcessPoolExecutor(PROCESSES) as pool:
            for name in names:
                _time_one(endpoint, calls[name])
                for metric, value in _load(pool, endpoint, calls[name], process.pid).items():
                    result[f"{name}_{metric}"] = value
    finally:
        _stop(process)
    return result


def run() -> dict[str, Any]:
    previous = os.environ.get("KILN_HOME")
    with tempfile.TemporaryDirectory(prefix="kiln-bench-api-") as work:
        home = Path(work) / "home"
        home.mkdir()
        try:
            key, arn, _ami = _setup(home)
        finally:
            if previous is None:
                os.environ.pop("KILN_HOME", None)
            else:
                os.environ["KILN_HOME"] = previous
        result: dict[str, Any] = {"amis": AMIS, "clients": PROCESSES * THREADS, "duration_s": DURATION,
                                  "cpus": os.cpu_count(), "uvicorn_http": _uvicorn_http()}
        only = [name for name in os.environ.get("KILN_BENCH_API_CALLS", "").split(",") if name]
        if only:
            return {**result, **_only(home, key, arn, only), "partial": True, "load_average": os.getloadavg()[0]}
        for preload in (False, True):
            result.update(_first_requests(home, key, arn, preload))
        process, endpoint, _ = _start(home, preload=True)
        locked, locked_endpoint, _ = _start(home, preload=True, read_only=False)
        try:
            calls = _calls(endpoint, key, arn)
            locked_calls = _calls(locked_endpoint, key, arn)
            with ProcessPoolExecutor(PROCESSES) as pool:
                for name, call in calls.items():
                    _time_one(endpoint, call)  # warm, and fail early on a wrong call
                    if name.startswith("describe"):
                        result[f"{name}_items"] = _items(endpoint, call)
                    for metric, value in _load(pool, endpoint, call, process.pid).items():
                        result[f"{name}_{metric}"] = value
                with _writer(home / "kiln.db") as commits:
                    for name in BESIDE_WRITER:
                        for label, server, at, sent in (("", process, endpoint, calls),
                                                        ("_write_locked", locked, locked_endpoint, locked_calls)):
                            _time_one(at, sent[name])
                            before, began = commits[0], time.monotonic()
                            for metric, value in _load(pool, at, sent[name], server.pid).items():
                                result[f"{name}_beside_writer{label}_{metric}"] = value
                            result[f"{name}_beside_writer{label}_writer_commits_per_s"] = round(
                                (commits[0] - before) / (time.monotonic() - began), 1)
                        result[f"{name}_beside_writer_vs_write_locked"] = round(
                            result[f"{name}_beside_writer_rps"] / result[f"{name}_beside_writer_write_locked_rps"], 3)
        finally:
            _stop(process)
            _stop(locked)
        moto, moto_endpoint = _moto(key)
        try:
            calls = _calls(moto_endpoint, key, arn, MOTO_REGION)
            with ProcessPoolExecutor(PROCESSES) as pool:
                for name in ("describe_images_page", "describe_images_all"):
                    result[f"moto_{name}_items"] = _items(moto_endpoint, calls[name])
                    for metric, value in _load(pool, moto_endpoint, calls[name], moto.pid).items():
                        result[f"moto_{name}_{metric}"] = value
                    result[f"{name}_vs_moto"] = round(result[f"{name}_rps"] / result[f"moto_{name}_rps"], 3)
        finally:
            moto.kill()
            moto.wait()
        floor = result["health_rps"]
        for name in ("get_image", "describe_images_page", "describe_images_all"):
            result[f"{name}_vs_health"] = round(result[f"{name}_rps"] / floor, 3)
    return result
