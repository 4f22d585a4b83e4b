"""One way for every stage to get a Ray session: join a cluster, or start a local Ray with sane spilling.

``init_ray(address)`` joins the cluster at ``address`` (or ``$RAY_ADDRESS``) exactly as a job on a real
cluster does; without one it starts a local Ray whose object store spills to disk instead of failing
when it fills up (a long 4K video or a big batch of clips in flight must never take the node down):

- spilling into ``spill_dir`` (default ``$GID_SPILL_DIR``, else ``<system temp>/gid-spill``), a folder
  that outlives Ray's session dir and can be put on a big disk; Ray stops spilling, and tasks wait,
  when that disk is 95 % full (its ``local_fs_capacity_threshold`` default);
- ``object_store_memory``: Ray's default (30 % of RAM, at most /dev/shm) unless given.

When joining an existing cluster these settings belong to that cluster (``ray start`` flags or the
KubeRay spec), so the local-only arguments are ignored there.

A local Ray runs without the dashboard (it would cost seconds of start-up and ``ray[default]``). Ray
Train's placement-group cleaner asks the dashboard's State API once a second whether the training
controller is alive, and without it logs a warning each time: hundreds of lines per training run.
:func:`quiet_state_api_warnings` runs in every worker process of a local Ray and drops that one
logger's warnings; the cleaner only matters when a controller dies, and a local session's placement
groups end with the session anyway.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path


def resolve_address(address: str | None) -> str | None:
    """The cluster to join: ``address``, else ``$RAY_ADDRESS``, else None (start a local Ray)."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is not None and not address.strip():
        raise ValueError("--address is empty; give HOST:PORT of a Ray head (or leave it out to start a local Ray)")
    return address


def default_spill_dir() -> Path:
    """``$GID_SPILL_DIR``, else ``<system temp>/gid-spill``."""
    return Path(os.environ.get("GID_SPILL_DIR") or Path(tempfile.gettempdir()) / "gid-spill")


def spill_directory(spill_dir: str | os.PathLike | None = None) -> Path:
    """The folder Ray spills objects into (``spill_dir`` or :func:`default_spill_dir`), created here."""
    directory = Path(spill_dir) if spill_dir else default_spill_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"cannot create the Ray spill folder {directory}: {err.strerror or err}; "
                              "set GID_SPILL_DIR to a writable folder with free disk space") from None
    return directory


PLACEMENT_GROUP_CLEANER_LOGGER = "ray.train.v2._internal.execution.controller.placement_group_cleaner"


def quiet_state_api_warnings() -> None:
    """Worker setup hook of a local Ray: drop the placement-group cleaner's warnings (module docstring)."""
    logging.getLogger(PLACEMENT_GROUP_CLEANER_LOGGER).setLevel(logging.ERROR)


def init_ray(address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None,
             object_store_memory: int | None = None, spill_dir: str | os.PathLike | None = None,
             log_to_driver: bool = False) -> bool:
    """Join ``address`` (or ``$RAY_ADDRESS``), or start a local Ray; True if this call started a session.

    An already initialised session (a test's, a notebook's) is reused as it is and False returned, so
    the caller only shuts down what it started. ``num_cpus``, ``num_gpus``, ``object_store_memory``
    (bytes) and ``spill_dir`` apply to a local Ray only.
    """
    import ray

    if ray.is_initialized():
        return False
    common = dict(include_dashboard=False, log_to_driver=log_to_driver, configure_logging=False)
    address = resolve_address(address)
    if address is not None:
        try:
            ray.init(address=address, **common)
        except ConnectionError as err:
            raise ValueError(f"cannot join the Ray cluster at --address {address}: {err}; check that its head is "
                             "running (`ray status --address ...`) or leave --address/RAY_ADDRESS out") from None
        return True
    if object_store_memory is not None and object_store_memory < 78 * 1024 * 1024:
        raise ValueError(f"object_store_memory must be at least 78 MiB (Ray's minimum), got {object_store_memory} bytes")
    ray.init(num_cpus=num_cpus, num_gpus=num_gpus, object_store_memory=object_store_memory,
             object_spilling_directory=str(spill_directory(spill_dir)),
             runtime_env={"worker_process_setup_hook": quiet_state_api_warnings}, **common)
    return True

