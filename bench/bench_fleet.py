"""Auto Scaling reconcile loop, idle: 100 groups at desired capacity, one real instance each.

Measured: the CPU time of what the scheduler does each minute for the reconcile job when the fleet
is idle (claim the due run, then ``pass_needed`` in its own process: list the groups and their live
instances, see every process alive, start no worker), of one idle ``reconcile`` pass (``kiln asg
reconcile``), and, for scale, of a worker process that would run the pass (interpreter start,
imports, the pass): what an idle minute would cost without the in-process check. Each divided by the
job's interval (60 s) is the share of one core. Goal: < 1 % of a core.
``KILN_BENCH_ASG_GROUPS`` / ``KILN_BENCH_ASG_DESIRED`` change the fleet (default 100 groups of 1).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

GROUPS = int(os.environ.get("KILN_BENCH_ASG_GROUPS", "100"))
DESIRED = int(os.environ.get("KILN_BENCH_ASG_DESIRED", "1"))
INTERVAL_S = 60.0  # the reconcile job's schedule: every minute
PASSES = 20
WORKER = (
    "from kiln.services.startup import install; install(); "
    "from kiln.services.fleet.asg_reconcile import JOB_KEY, run_due; run_due(JOB_KEY, '')"
)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="kiln-bench-fleet-") as work:
        os.environ["KILN_HOME"] = str(Path(work) / "home")
        from kiln.db.engine import reset_engines

        reset_engines()
        from kiln.services.startup import install

        install()
        from kiln.runtime import instances
        from kiln.schedule.claims import claim_due_run
        from kiln.services.fleet import asg_reconcile, autoscaling, launch_templates
        from kiln.store import api
        from kiln.store.busybox import busybox_rootfs

        ami = api.import_rootfs(busybox_rootfs(Path(work) / "busybox"), name="bench-web")
        launch_templates.create_launch_template("bench-web", {"ImageId": ami})
        for n in range(GROUPS):
            autoscaling.create_auto_scaling_group(
                f"bench-{n:03d}", launch_template={"LaunchTemplateName": "bench-web", "Version": "1"},
                min_size=0, max_size=DESIRED, desired_capacity=DESIRED)
        try:
            began = time.perf_counter()
            launched = sum(len(r.launched) for r in asg_reconcile.reconcile(account=None, region=None))
            launch_s = time.perf_counter() - began
            assert asg_reconcile.reconcile(account=None, region=None) == []  # idle: nothing to do

            cpu = time.process_time()
            wall = time.perf_counter()
            for _ in range(PASSES):
                asg_reconcile.reconcile(account=None, region=None)
            pass_cpu = (time.process_time() - cpu) / PASSES
            pass_wall = (time.perf_counter() - wall) / PASSES

            due = datetime(2026, 1, 1, tzinfo=UTC)
            cpu = time.process_time()
            for minute in range(PASSES):
                assert claim_due_run(asg_reconcile.JOB_KEY, due + timedelta(minutes=minute), "bench")
                assert not asg_reconcile.pass_needed()
            tick_cpu = (time.process_time() - cpu) / PASSES

            env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
            before = _children_cpu()
            rounds = 3
            for _ in range(rounds):
                subprocess.run([sys.executable, "-c", WORKER], env=env, check=True)
            job_cpu = (_children_cpu() - before) / rounds
        finally:
            for instance in instances.list_instances(states=["pending", "running", "stopped"]):
                instances.terminate(instance.id, force=True)
        return {
            "groups": GROUPS,
            "instances": launched,
            "first_pass_launch_s": round(launch_s, 1),
            "idle_pass_cpu_ms": round(pass_cpu * 1000, 1),
            "idle_pass_wall_ms": round(pass_wall * 1000, 1),
            "idle_pass_percent_of_core": round(100 * pass_cpu / INTERVAL_S, 3),
            "idle_minute_scheduler_cpu_ms": round(tick_cpu * 1000, 1),
            "idle_minute_percent_of_core": round(100 * tick_cpu / INTERVAL_S, 3),
            "worker_pass_cpu_ms": round(job_cpu * 1000, 1),
            "worker_pass_percent_of_core": round(100 * job_cpu / INTERVAL_S, 3),
            "interval_s": INTERVAL_S,
        }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
