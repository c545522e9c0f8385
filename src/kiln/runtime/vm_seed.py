"""The NoCloud seed a VM instance boots with: a small FAT volume labelled ``CIDATA`` that cloud-init's
NoCloud datasource reads (``meta-data``, ``user-data``, ``vendor-data``).

``meta-data`` carries the instance id, host name and the SSH public keys (the instance's key pair and
kiln's own key, which ``kiln instance exec`` logs in with); ``user-data`` is the user's (an empty
cloud-config when none); ``vendor-data`` lets the public keys log in as root too (what kiln's exec
needs) and, at every boot (``bootcmd``), writes and starts kiln's exec agent (``kiln.runtime.vm_agent``,
for ``exec --via serial``); the user's own user-data can override both. A user's cloud-config with a
``bootcmd`` of its own would replace kiln's (cloud-init gives user-data's lists precedence over
vendor-data's), so there the seed's user-data is the user's config with kiln's entry appended to its
``bootcmd`` (merged here, not left to the guest's cloud-init, whose merging differs between versions);
the metadata endpoint still serves the user data as given.

``mkfs.vfat`` runs once: the empty volume is kept in ``KILN_HOME/cache/vm-seed/`` and each seed is a
copy of it with the files written in (``kiln.runtime.fat_files``).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from kiln.errors import SystemRequirement
from kiln.files import staged_path
from kiln.home import cache_dir
from kiln.runtime import fat_files

LABEL = "CIDATA"
SEED_BYTES = 1 << 20  # FAT12; EC2's user data is at most 16 KiB
EMPTY_USER_DATA = b"#cloud-config\n{}\n"
AGENT = Path(__file__).with_name("vm_agent.py")  # run in the guest, not imported here
AGENT_IN_GUEST = "/var/lib/kiln/exec-agent.py"


def agent_bootcmd() -> list[list[str]]:
    """The ``bootcmd`` entries that write and start kiln's exec agent."""
    agent = base64.b64encode(AGENT.read_bytes()).decode()
    start = (f"mkdir -p {os.path.dirname(AGENT_IN_GUEST)} && echo {agent} | base64 -d > {AGENT_IN_GUEST} && "
             # a unit of its own, so it outlives cloud-init's; without default dependencies and not waited
             # for: bootcmd runs before sysinit.target, which a default service would wait for (a deadlock);
             # without systemd, in the background
             f"if command -v systemd-run >/dev/null; then systemd-run --no-block --collect --unit=kiln-exec-agent "
             f"-p DefaultDependencies=no python3 {AGENT_IN_GUEST} || true; "
             f"else nohup python3 {AGENT_IN_GUEST} >/dev/null 2>&1 & fi")
    return [["sh", "-c", start]]


def vendor_data() -> str:
    config = {"disable_root": False, "bootcmd": agent_bootcmd()}
    return "#cloud-config\n" + json.dumps(config) + "\n"


def seed_user_data(user_data: bytes | None) -> bytes:
    """The seed's user-data: the user's, but a cloud-config with its own ``bootcmd`` list gets kiln's
    agent entry appended to it (see the module docstring)."""
    import yaml

    if user_data is None:
        return EMPTY_USER_DATA
    if not user_data.startswith(b"#cloud-config"):  # a script, a MIME archive, gzip: no bootcmd to lose
        return user_data
    try:
        config = yaml.safe_load(user_data)
    except yaml.YAMLError:  # cloud-init reports it; kiln hands it over as given
        return user_data
    if not isinstance(config, dict) or not isinstance(config.get("bootcmd"), list):
        return user_data
    merged = {**config, "bootcmd": [*config["bootcmd"], *agent_bootcmd()]}
    return b"#cloud-config\n" + yaml.safe_dump(merged, sort_keys=False, allow_unicode=True).encode()


def meta_data(instance_id: str, hostname: str, public_keys: Sequence[str]) -> str:
    data: dict[str, object] = {"instance-id": instance_id, "local-hostname": hostname}
    if public_keys:
        data["public-keys"] = [key.strip() for key in public_keys]
    return json.dumps(data, indent=1) + "\n"  # YAML's subset, written by C: cloud-init reads it as YAML


def seed_files(instance_id: str, hostname: str, *, user_data: bytes | None,
               public_keys: Sequence[str]) -> dict[str, bytes]:
    """What the seed holds, by file name."""
    return {
        "meta-data": meta_data(instance_id, hostname, public_keys).encode(),
        "user-data": seed_user_data(user_data),
        "vendor-data": vendor_data().encode(),
    }


def _run(argv: list[str], package: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False,
                              env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    except FileNotFoundError:
        raise SystemRequirement(f"{argv[0]} is not installed", hint=f"apt-get install {package}") from None
    if done.returncode != 0:
        raise SystemRequirement(f"{argv[0]} failed making the NoCloud seed: {done.stderr.strip()[:300]}")


def _empty_volume() -> Path:
    empty = cache_dir() / "vm-seed" / f"empty-{LABEL}-{SEED_BYTES}.img"
    if not empty.is_file():
        empty.parent.mkdir(parents=True, exist_ok=True)
        with staged_path(empty) as partial:
            with open(partial, "wb") as handle:
                handle.truncate(SEED_BYTES)
            _run(["mkfs.vfat", "-n", LABEL, str(partial)], "dosfstools")
    return empty


def write_seed(dest: Path, files: dict[str, bytes]) -> Path:
    """The FAT volume at ``dest`` holding ``files``."""
    volume = bytearray(_empty_volume().read_bytes())
    fat_files.add_files(volume, files)
    dest.write_bytes(volume)
    return dest


def read_seed(seed: Path, name: str) -> bytes:
    """One file of a seed (for tests and ``describe``)."""
    done = subprocess.run(["mtype", "-i", str(seed), f"::/{name}"], capture_output=True, check=True,
                          env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    return done.stdout
