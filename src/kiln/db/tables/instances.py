"""Instances: sandboxes launched from layer lists (EC2 instances), their state and processes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, UTCDateTime
from kiln.home import DEFAULT_ACCOUNT


class InstanceRecord(Base):
    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    image_id: Mapped[str | None] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(String(12), index=True, server_default=DEFAULT_ACCOUNT)
    region: Mapped[str] = mapped_column(String(64))
    instance_type: Mapped[str] = mapped_column(String(32))
    # EC2 state names: pending, running, stopping, stopped, shutting-down, terminated.
    state: Mapped[str] = mapped_column(String(16), index=True)
    state_reason_code: Mapped[str | None] = mapped_column(String(64))
    state_reason: Mapped[str | None] = mapped_column(String(512))
    state_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    root_device_type: Mapped[str] = mapped_column(String(16))  # ebs | instance-store
    network: Mapped[str] = mapped_column(String(8))  # none | host (its own namespace, NAT to the host's)
    hostname: Mapped[str] = mapped_column(String(255))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(Integer)
    lower_dirs: Mapped[list[str]] = mapped_column(JSON)  # base layer first
    # dir, upper, work, merged, console, cgroups; host_local_network and network_helper ([pid, start
    # time] of the instance's slirp4netns) for an instance on the network.
    paths: Mapped[dict[str, Any]] = mapped_column(JSON)
    tags: Mapped[dict[str, str]] = mapped_column(JSON)
    launch_time: Mapped[datetime] = mapped_column(UTCDateTime())
    # bwrap's pid 1 inside the instance (holds the namespaces) and the outer bwrap on the host;
    # start times (clock ticks after boot) tell a live process from a reused pid.
    init_pid: Mapped[int | None] = mapped_column(Integer)
    init_start_time: Mapped[int | None] = mapped_column(BigInteger)
    monitor_pid: Mapped[int | None] = mapped_column(Integer)
    monitor_start_time: Mapped[int | None] = mapped_column(BigInteger)
    # The kiln process that launched the instance; ``owned`` instances (builds, tests) live only as
    # long as that process, and recovery hands back the ones whose owner died.
    owner_pid: Mapped[int | None] = mapped_column(Integer)
    owner_start_time: Mapped[int | None] = mapped_column(BigInteger)
    owned: Mapped[bool] = mapped_column(Boolean, default=False)
    # The state change in progress (launch, start, stop, reboot, terminate) and who drives it.
    transition: Mapped[str | None] = mapped_column(String(16))
    busy_pid: Mapped[int | None] = mapped_column(Integer)
    busy_start_time: Mapped[int | None] = mapped_column(BigInteger)
