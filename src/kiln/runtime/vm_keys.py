"""The SSH keys ``kiln instance exec`` logs into VM instances with, one per instance, made ahead of
time: a launch takes a key pair from a small pool in ``KILN_HOME/cache/vm-keys/`` (an atomic rename,
so two launches never share one) and, once QEMU runs, a detached ``ssh-keygen`` refills the pool while
the VM boots (:func:`refill_pool_once`: not while QEMU sets up, which it would slow, and not in the way
of the launch returning). With the pool empty
(the first launch), the key is made there and then."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path

from kiln.errors import SystemRequirement
from kiln.home import cache_dir

POOL_SIZE = 4
STALE_FILL_SECONDS = 60.0  # a refill's scratch dir older than this belongs to one that died


def ssh_keygen(private: Path, *, key_type: str = "ed25519", comment: str = "kiln") -> str:
    """A new key pair at ``private`` (and ``private``.pub); returns the public key line."""
    argv = ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", comment, "-f", str(private)]
    if key_type == "rsa":
        argv[1:1] = ["-b", "2048"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise SystemRequirement("ssh-keygen is not installed", hint="apt-get install openssh-client") from None
    if done.returncode != 0:
        raise SystemRequirement(f"ssh-keygen failed: {done.stderr.strip()[:300]}")
    return private.with_name(private.name + ".pub").read_text().strip()


def pool_dir() -> Path:
    pool = cache_dir() / "vm-keys"
    pool.mkdir(mode=0o700, parents=True, exist_ok=True)
    return pool


def _claim(pool: Path, private: Path) -> str | None:
    """The public key of a pooled pair moved to ``private``; None when the pool is empty."""
    for candidate in sorted(pool.glob("*.key")):
        try:
            os.rename(candidate, private)  # the claim: one launch wins each pair
        except FileNotFoundError:
            continue
        # a refill moves the .pub in before the .key, so it is there
        if _move_pub(candidate, private):
            return private.with_name(private.name + ".pub").read_text().strip()
    return None


def _move_pub(candidate: Path, private: Path) -> bool:
    try:
        os.rename(candidate.with_suffix(".pub"), private.with_name(private.name + ".pub"))
    except FileNotFoundError:
        private.unlink(missing_ok=True)
        return False
    return True


def refill_pool() -> None:
    """Top the pool up in the background if it runs low (failures ignored: only the speed of later
    launches depends on it)."""
    with contextlib.suppress(OSError):
        _refill(pool_dir())


_refills: list[threading.Thread] = []


def refill_pool_once(ready: threading.Event) -> None:
    """:func:`refill_pool` on a thread of its own once ``ready`` is set (a launch sets it when QEMU is
    set up, and returns meanwhile). Not a daemon thread: a command that ends at once still refills."""
    def refill() -> None:
        ready.wait()
        refill_pool()

    thread = threading.Thread(target=refill, name="kiln-vm-key-refill")
    thread.start()
    _refills[:] = [*[other for other in _refills if other.is_alive()], thread]


def wait_refills(timeout: float = 30.0) -> None:
    """Wait until the refills launches started have made their keys (benchmarks: so that no
    ``ssh-keygen`` runs beside what they measure)."""
    deadline = time.monotonic() + timeout
    for thread in list(_refills):
        thread.join(max(0.0, deadline - time.monotonic()))
    with contextlib.suppress(OSError):
        while any(pool_dir().glob(".fill-*")) and time.monotonic() < deadline:
            time.sleep(0.01)


def _refill(pool: Path) -> None:
    """Start one detached shell making the key pairs the pool lacks (refills under way counted), once
    it lacks half."""
    filling = 0
    for scratch in pool.glob(".fill-*"):
        try:
            fresh = time.time() - scratch.stat().st_mtime < STALE_FILL_SECONDS
        except FileNotFoundError:
            continue
        if fresh:
            filling += len(list(scratch.iterdir())) or 1
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    missing = POOL_SIZE - len(list(pool.glob("*.key"))) - filling
    if missing < POOL_SIZE // 2:  # refilled in batches: most launches start no process at all
        return
    scratch = pool / f".fill-{secrets.token_hex(8)}"
    scratch.mkdir()
    names = [secrets.token_hex(8) for _ in range(missing)]
    for name in names:
        (scratch / name).touch()  # counted as under way
    script = ('cd "$1" && for n in ' + " ".join(names) + '; do '
              'ssh-keygen -q -t ed25519 -N "" -C kiln-exec -f "k$n" </dev/null >/dev/null 2>&1 '
              '&& mv "k$n.pub" "$2/$n.pub" && mv "k$n" "$2/$n.key"; rm -f "$n"; done; cd / && rm -rf "$1"')
    threading.Thread(target=_spawn, args=(["sh", "-c", script, "sh", str(scratch), str(pool)],), daemon=True).start()


def _spawn(argv: list[str]) -> None:
    """Run ``argv`` detached and reap it (on a thread: the launch does not wait for the exec)."""
    quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    # posix_spawn: no copy of this (large) process's memory map, unlike fork
    with contextlib.suppress(OSError):
        os.waitpid(os.posix_spawn("/bin/sh", argv, os.environ, file_actions=quiet, setsid=True), 0)


def take_key(private: Path, *, comment: str) -> str:
    """An ed25519 key pair at ``private`` (and ``private``.pub), from the pool or made now; returns
    the public key line, ending in ``comment``."""
    pool = pool_dir()
    public = _claim(pool, private)
    if public is None:
        public = ssh_keygen(private, comment=comment)
    line = " ".join([*public.split()[:2], comment])
    private.with_name(private.name + ".pub").write_text(line + "\n")
    return line
