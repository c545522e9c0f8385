"""A ``kiln image create`` process whose distribution is publishing to AWS (moto's server behind a slow
proxy), killed with SIGKILL in the middle of the upload: the next kiln process's recovery fails the
build cleanly — its pending snapshot deleted, nothing registered, nothing sent again, no record left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.aws.proxy import FaultProxy
from tests.builds.distribution_helpers import make_build_inputs
from tests.builds.test_distribution_aws import account_amis, account_snapshots, aws_entry, publications
from tests.conftest import Kiln, MotoServer

from kiln.db.engine import reset_engines, session
from kiln.db.tables.publishing import Publication, PublishedBlock, PublishRemoval
from kiln.services.builds import records as images

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")
ROOT = Path(__file__).resolve().parents[2]


def sent_blocks() -> tuple[str | None, int]:
    with session() as db:
        publication = db.scalars(select(Publication)).one_or_none()
        if publication is None:
            return None, 0
        count = db.scalar(select(func.count()).select_from(PublishedBlock).where(
            PublishedBlock.publication_id == publication.id, PublishedBlock.sent.is_(True)))
        return publication.snapshot_id, int(count or 0)


def test_a_build_killed_mid_publish_is_cleaned_up_by_the_next_process(
    kiln: Kiln, aws: MotoServer, parent_ami: str, kiln_home: Path
) -> None:
    before = account_snapshots(aws)
    with FaultProxy(aws.endpoint) as proxy:
        proxy.delay = 1.5  # a slow link: the kill lands between blocks
        arns = make_build_inputs(parent_ami, [aws_entry(proxy.endpoint)])
        reset_engines()  # the child process opens the same database
        env = {**os.environ, "KILN_HOME": str(kiln_home), "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
        child = subprocess.Popen(
            [sys.executable, "-m", "kiln", "image", "create", "--recipe", arns["recipe"], "--infrastructure",
             arns["infrastructure"], "--distribution", arns["distribution"], "--no-tests"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            while sent_blocks()[1] < 1:
                assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
                assert time.monotonic() < deadline, "the publish recorded no progress"
                time.sleep(0.05)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait()
            if child.stderr:
                child.stderr.close()
        proxy.settle()  # blocks the killed process had already sent reach moto (not sent *again*)
        snapshot_id, sent = sent_blocks()
        assert sent >= 1
        assert snapshot_id in account_snapshots(aws)  # left pending on AWS by the killed process
        puts = len(proxy.puts)
        [image] = images.list_images(name="web")
        assert image["state"]["status"] == "DISTRIBUTING"

        reset_engines()  # the next kiln command opens the database afresh, which runs recovery
        result = kiln("image", "builds", "--output", "json")
        assert result.exit_code == 0, result.stderr
        assert len(proxy.puts) == puts  # nothing sent again

    image = images.get_image(image["arn"])
    assert image["state"]["status"] == "FAILED" and image["state"]["reason"].startswith("interrupted")
    assert account_amis(aws) == [] and account_snapshots(aws) == before  # no orphaned snapshot
    assert publications() == 0
    with session() as db:
        assert db.scalar(select(func.count()).select_from(PublishRemoval)) == 0
