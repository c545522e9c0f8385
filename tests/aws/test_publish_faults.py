"""A publish killed mid-way (SIGKILL of a real ``kiln`` process) resumes the same snapshot without
resending the blocks it recorded; throttling and 5xx answers from a real proxy are retried."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select
from tests.aws.conftest import disk_blocks, snapshot_blocks
from tests.aws.proxy import FaultProxy
from tests.conftest import Kiln, MotoServer

from kiln.db.engine import reset_engines, session
from kiln.db.tables.publishing import Publication, PublishedBlock
from kiln.store import api

ROOT = Path(__file__).resolve().parents[2]


def recorded() -> tuple[str | None, set[int]]:
    """The publication's snapshot id and the blocks recorded as written to it."""
    with session() as db:
        publication = db.scalars(select(Publication)).one_or_none()
        if publication is None:
            return None, set()
        sent = db.scalars(select(PublishedBlock.block_index).where(
            PublishedBlock.publication_id == publication.id, PublishedBlock.sent.is_(True)))
        return publication.snapshot_id, set(sent)


def test_a_killed_publish_resumes_without_resending_recorded_blocks(
    kiln: Kiln, aws: MotoServer, proxy: FaultProxy, base_ami: str, kiln_home: Path, tmp_path: Path
) -> None:
    raw = disk_blocks(api.export_image(base_ami, "raw", tmp_path / "disk.raw"))
    proxy.delay = 0.4  # a slow link: one block at a time, 0.4 s each
    reset_engines()  # the child process opens the same database
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    child = subprocess.Popen(
        [sys.executable, "-m", "kiln", "image", "publish", base_ami, "--to", "aws", "--region", "us-east-1",
         "--endpoint-url", proxy.endpoint, "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(recorded()[1]) < 3:
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "the publish recorded no progress"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
        if child.stderr:
            child.stderr.close()
    snapshot_id, before = recorded()
    assert 3 <= len(before) < len(raw)
    proxy.delay = 0.0
    proxy.puts.clear()

    result = kiln("image", "publish", base_ami, "--to", "aws", "--region", "us-east-1",
                  "--endpoint-url", proxy.endpoint, "--output", "json")
    assert result.exit_code == 0, result.stderr
    resumed = json.loads(result.stdout)

    assert resumed["Resumed"] and resumed["SnapshotId"] == snapshot_id  # moto keeps the pending snapshot
    assert not set(proxy.puts) & before  # nothing recorded was sent again
    assert set(proxy.puts) == raw.keys() - before
    assert resumed["BlocksSent"] == len(raw) - len(before) and resumed["BlocksAlreadyWritten"] == len(before)
    assert snapshot_blocks(aws, snapshot_id) == raw


def test_throttling_and_server_errors_are_retried(
    kiln: Kiln, aws: MotoServer, proxy: FaultProxy, base_ami: str, tmp_path: Path
) -> None:
    proxy.faults = [503, 503, 400, 503, 400]  # 400s carry ThrottlingException
    result = kiln("image", "publish", base_ami, "--to", "aws", "--region", "us-east-1",
                  "--endpoint-url", proxy.endpoint, "--workers", "2", "--output", "json")
    assert result.exit_code == 0, result.stderr
    published = json.loads(result.stdout)

    assert proxy.faulted == 5 and published["Retries"] == 5
    raw = disk_blocks(api.export_image(base_ami, "raw", tmp_path / "disk.raw"))
    assert sorted(proxy.puts) == sorted(raw)  # each block reached moto once, after its faults
    assert snapshot_blocks(aws, published["SnapshotId"]) == raw


def test_a_fault_that_outlasts_the_retries_fails_with_one_error_and_keeps_progress(
    kiln: Kiln, aws: MotoServer, proxy: FaultProxy, base_ami: str
) -> None:
    proxy.faults = [503] * 1000
    result = kiln("image", "publish", base_ami, "--to", "aws", "--region", "us-east-1",
                  "--endpoint-url", proxy.endpoint, "--workers", "1")
    assert result.exit_code == 1 and "PutSnapshotBlock" in result.stderr and "Traceback" not in result.stderr
    snapshot_id, sent = recorded()
    assert snapshot_id is not None and sent == set()
    proxy.faults = []
    again = kiln("image", "publish", base_ami, "--to", "aws", "--region", "us-east-1",
                 "--endpoint-url", proxy.endpoint, "--output", "json")
    assert again.exit_code == 0 and json.loads(again.stdout)["SnapshotId"] == snapshot_id


def test_a_publish_that_failed_at_completion_completes_and_registers_without_sending_again(
    kiln: Kiln, aws: MotoServer, proxy: FaultProxy, base_ami: str
) -> None:
    proxy.complete_faults = [503] * 1000
    args = ("image", "publish", base_ami, "--to", "aws", "--region", "us-east-1", "--endpoint-url", proxy.endpoint)
    failed = kiln(*args)
    assert failed.exit_code == 1 and "CompleteSnapshot" in failed.stderr
    with session() as db:
        assert db.scalars(select(Publication.state)).one() == "completing"
    proxy.complete_faults = []
    proxy.puts.clear()
    done = kiln(*args, "--output", "json")
    assert done.exit_code == 0, done.stderr
    assert proxy.puts == [] and json.loads(done.stdout)["AmiId"].startswith("ami-")


def test_a_terminal_gets_a_progress_bar_with_bytes_and_rate(
    aws: MotoServer, proxy: FaultProxy, base_ami: str, tmp_path: Path
) -> None:
    import pty

    size = api.export_image(base_ami, "raw", tmp_path / "disk.raw").stat().st_size
    proxy.delay = 0.15  # slow enough for the bar to be drawn a few times
    reset_engines()
    main, terminal = pty.openpty()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "COLUMNS": "160", "TERM": "xterm"}
    child = subprocess.Popen(
        [sys.executable, "-m", "kiln", "image", "publish", base_ami, "--to", "aws", "--region", "us-east-1",
         "--endpoint-url", proxy.endpoint, "--workers", "1", "--output", "json"],
        env=env, stdout=subprocess.PIPE, stderr=terminal,
    )  # fmt: skip
    os.close(terminal)
    drawn = b""
    try:
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(main)
        stdout = child.communicate(timeout=120)[0]
    assert child.returncode == 0
    assert json.loads(stdout)["BlocksSent"] > 0  # stdout stays machine-readable
    text = drawn.decode(errors="replace")
    assert "publishing" in text and "MB/s" in text  # the bar, and the rate
    assert f"{size / 1e6:.1f}/{size / 1e6:.1f} MB" in text  # bytes done of the whole disk
