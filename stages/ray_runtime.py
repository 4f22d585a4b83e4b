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

Quiet output (`gid` only, :func:`enable_log_file`): when `gid` starts or joins Ray, file descriptor 2 of
the process is pointed at a log file before ``ray.init``, and ``sys.stderr`` at the terminal. What Ray
prints through its own loggers and its C++ core (the token-authentication banner, INFO lines, Ray
Data's "constructor arguments in the object store" and "Progress bars disabled" notices) lands in the
file; gid's progress bars and messages still reach the terminal, and `gid` prints the file's path at
the end (``$GID_LOG_DIR``, else ``<system temp>/gid-logs``).
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path


def resolve_address(address: str | None) -> str | None:
    """The cluster to join: ``address``, else ``$RAY_ADDRESS``, else None (start a local Ray)."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is not None and not address.strip():
        raise ValueError("--address is empty; give HOST:PORT of a Ray head (or leave it out to start a local Ray)")
    return address


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """ValueError at once if nothing listens at a HOST:PORT (or ray://HOST:PORT) ``address``.

    Without this check ``ray.init`` keeps retrying an unreachable head for a minute or more.
    ``auto``/``local`` and addresses without a port are left to Ray.
    """
    import socket

    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ValueError(f"nobody answers at --address {address} ({err.strerror or err}); start the Ray head there "
                         "(`ray start --head`), fix the address, or leave --address/RAY_ADDRESS out to start a "
                         "local Ray") from None


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


_log = {"enabled": False, "path": None, "terminal_fd": None, "last_resort": None}


def enable_log_file() -> None:
    """Route Ray's output of this process to a log file from the next :func:`init_ray` on (module docstring)."""
    _log["enabled"] = True


def ray_log_path() -> Path | None:
    """The log file Ray's output went to in this process, or None if it was not routed."""
    return _log["path"]


def _route_stderr_to_log() -> None:
    """fd 2 → a new log file; ``sys.stderr`` → the terminal (a duplicate of the old fd 2)."""
    if not _log["enabled"] or _log["terminal_fd"] is not None or sys.stderr is not sys.__stderr__:
        return  # not `gid`, already routed, or stderr is captured (tests, notebooks): leave it alone
    folder = Path(os.environ.get("GID_LOG_DIR") or Path(tempfile.gettempdir()) / "gid-logs")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"ray-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        return  # no place for a log: Ray keeps printing to the terminal
    import ray.data  # noqa: F401 (sets up the "ray.data" loggers now, so they are routed below)

    log_stream = sys.stderr  # still the object on fd 2, which now becomes the log
    log_stream.flush()
    terminal = os.dup(2)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    sys.stderr = os.fdopen(terminal, "w", buffering=1, closefd=False)
    # Ray's console handlers, and Python's handler of last resort (which `ray.init(configure_logging=False)`
    # leaves the "ray" logger with), write to whatever sys.stderr is when they emit: point them at the log.
    def routed(level: int) -> logging.Handler:
        handler = logging.StreamHandler(log_stream)
        handler.setLevel(level)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        return handler

    for name, logger in list(logging.root.manager.loggerDict.items()):
        if (name == "ray" or name.startswith("ray.")) and isinstance(logger, logging.Logger):
            for handler in list(logger.handlers):
                if type(handler).__name__ == "PlainRayHandler":
                    logger.removeHandler(handler)
                    logger.addHandler(routed(handler.level))
    _log["last_resort"], logging.lastResort = logging.lastResort, routed(logging.WARNING)
    _log.update(path=path, terminal_fd=terminal)


def restore_stderr() -> None:
    """Undo :func:`_route_stderr_to_log` (fd 2 and ``sys.stderr`` back on the terminal); no-op if not routed."""
    terminal = _log["terminal_fd"]
    if terminal is None:
        return
    for stream in (sys.stderr, sys.__stderr__):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os.dup2(terminal, 2)
    sys.stderr = sys.__stderr__
    logging.lastResort = _log["last_resort"]
    _log["terminal_fd"] = None


PLACEMENT_GROUP_CLEANER_LOGGER = "ray.train.v2._internal.execution.controller.placement_group_cleaner"


def quiet_state_api_warnings() -> None:
    """Worker setup hook of a local Ray: drop the placement-group cleaner's warnings (module docstring),
    and Ray Train's and Ray Data's INFO lines ("Reporting training result", "Dataset … finished"), which
    a training run's workers would otherwise forward to the terminal beside gid's progress bar."""
    logging.getLogger(PLACEMENT_GROUP_CLEANER_LOGGER).setLevel(logging.ERROR)
    for name in ("ray.train", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)


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
    if object_store_memory is not None and object_store_memory < 78 * 1024 * 1024:
        raise ValueError(f"object_store_memory must be at least 78 MiB (Ray's minimum), got {object_store_memory} bytes")
    if address is not None:
        check_reachable(address)
    _route_stderr_to_log()
    if address is not None:
        try:
            ray.init(address=address, **common)
        except ConnectionError as err:
            raise ValueError(f"cannot join the Ray cluster at --address {address}: {err}; check that its head is "
                             "running (`ray status --address ...`) or leave --address/RAY_ADDRESS out") from None
        return True
    ray.init(num_cpus=num_cpus, num_gpus=num_gpus, object_store_memory=object_store_memory,
             object_spilling_directory=str(spill_directory(spill_dir)),
             runtime_env={"worker_process_setup_hook": quiet_state_api_warnings}, **common)
    return True


def reachable_address(address: str | None) -> None:
    """``--address`` (or ``$RAY_ADDRESS``), if given, has something listening (see check_reachable)."""
    address = resolve_address(address)
    if address is not None:
        check_reachable(address)
