"""A real multi-node Ray cluster on this one machine, for fault drills, scaling figures and trying `--address`.

A head node (no CPUs: it only hosts the GCS and the drivers) and N worker nodes of ``cpus_per_worker``
CPUs each. Every node is its own set of processes (raylet, object store, agents, workers), exactly as
on separate machines, so a node can be killed with SIGKILL and a replacement added while a job runs.

The nodes are started by ``ray.cluster_utils.Cluster`` inside a *controller* process
(``python -m gid.testing.local_cluster``) with a private temp dir (``RAY_TMPDIR``), so that neither the
cluster's address file nor its sockets touch other Ray sessions on the machine (``ray.init()``
elsewhere keeps starting its own local Ray). :class:`LocalCluster` drives the controller over a pipe:
one JSON command per line in, one JSON reply per line out. Ray itself resolves 127.0.0.1 to the
machine's own address, so ``address`` is ``<host ip>:<port>``; nothing listens beyond this machine's
interfaces that a local ``ray.init`` would not open too.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from gid.testing import procfs
from gid.stages.ray_runtime import spill_directory


@dataclass
class ClusterConfig:
    """Shape of a local cluster. Health checks are fast (1 s × 3) so a killed node is declared dead in ~3 s.

    ``pin_cores``: worker node i runs on cores ``[i·c, (i+1)·c)`` (``c = cpus_per_worker``, modulo the
    machine's cores), every one of its processes and threads, so that a node of 1 CPU is one core as on
    a machine of its own; unpinned, a node's helper threads (decoder, Arrow, BLAS) and Ray's own
    processes also run on the other nodes' idle cores. The head is not pinned (on a real cluster it
    is a machine of its own).
    """

    num_workers: int = 2
    cpus_per_worker: int = 1
    pin_cores: bool = False
    object_store_mb: int = 200  # per node
    health_check_period_ms: int = 1000
    health_check_failure_threshold: int = 3

    def __post_init__(self) -> None:
        if self.num_workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.num_workers}")
        if self.cpus_per_worker < 1:
            raise ValueError(f"--cpus-per-worker must be at least 1, got {self.cpus_per_worker}")
        if self.object_store_mb < 78:
            raise ValueError(f"--object-store-mb must be at least 78 (Ray's minimum), got {self.object_store_mb}")


def _node_info(node) -> dict[str, Any]:
    return {"node_id": node.node_id, "raylet_pid": node.all_processes["raylet"][0].process.pid}


class _Controller:
    """Lives in the controller process: owns the ``Cluster`` and its worker nodes, in start order."""

    def __init__(self, cfg: ClusterConfig, root: Path) -> None:
        from ray.cluster_utils import Cluster

        self.cfg = cfg
        system = {"health_check_period_ms": cfg.health_check_period_ms,
                  "health_check_failure_threshold": cfg.health_check_failure_threshold}
        self.spill = spill_directory(root / "spill")
        self.cluster = Cluster(initialize_head=True, head_node_args=dict(
            num_cpus=0, temp_dir=str(root / "ray"), include_dashboard=False, object_spilling_directory=str(self.spill),
            object_store_memory=cfg.object_store_mb * 1024 * 1024, _system_config=system))
        self.workers: list[Any] = []
        self.info: list[dict[str, Any]] = []
        self.alive: list[bool] = []
        for _ in range(cfg.num_workers):
            self.add()

    def add(self) -> dict[str, Any]:
        index = len(self.workers)
        cores = self.cores(index) if self.cfg.pin_cores else None
        own = os.sched_getaffinity(0)
        if cores:  # the node's processes inherit this thread's affinity when they are started, and pass it on
            os.sched_setaffinity(0, cores)
        try:
            node = self.cluster.add_node(num_cpus=self.cfg.cpus_per_worker, object_spilling_directory=str(self.spill),
                                         object_store_memory=self.cfg.object_store_mb * 1024 * 1024)
        finally:
            os.sched_setaffinity(0, own)
        self.workers.append(node)
        self.info.append(_node_info(node))
        self.alive.append(True)
        if cores:
            self.info[-1]["cores"] = sorted(os.sched_getaffinity(self.info[-1]["raylet_pid"]))
        return {"index": index, **self.info[-1]}

    def cores(self, index: int) -> set[int]:
        """The cores of worker node ``index`` when pinned: ``[i·c, (i+1)·c)`` modulo the machine's cores."""
        per_node, total = self.cfg.cpus_per_worker, os.cpu_count() or 1
        return {(index * per_node + k) % total for k in range(per_node)}

    def kill(self, index: int) -> dict[str, Any]:
        """SIGKILL every process of worker node ``index``: its raylet, agents and task/actor workers."""
        if not 0 <= index < len(self.workers) or not self.alive[index]:
            raise ValueError(f"no live worker node {index}")
        node, info = self.workers[index], self.info[index]
        workers = procfs.children(info["raylet_pid"])
        self.cluster.remove_node(node, allow_graceful=False)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.alive[index] = False
        return {"index": index, "killed_workers": len(workers), **info}

    def state(self) -> dict[str, Any]:
        return {"address": self.cluster.address, "nodes": [
            {"index": i, "alive": alive, **info} for i, (info, alive) in enumerate(zip(self.info, self.alive))]}


def _serve(cfg: ClusterConfig, root: Path) -> None:
    """Controller main loop: JSON commands on stdin (``state``, ``add``, ``kill``, ``stop``), replies on stdout."""
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # Ray's own prints must not mix with the replies
    replies = os.fdopen(reply_fd, "w", buffering=1)
    controller = _Controller(cfg, root)
    replies.write(json.dumps({"ok": True, **controller.state()}) + "\n")
    try:
        for line in sys.stdin:
            command = json.loads(line)
            try:
                if command["op"] == "stop":
                    break
                result = {"state": controller.state, "add": controller.add,
                          "kill": lambda: controller.kill(int(command["index"]))}[command["op"]]()
                replies.write(json.dumps({"ok": True, **result}) + "\n")
            except (ValueError, KeyError) as err:
                replies.write(json.dumps({"ok": False, "error": str(err)}) + "\n")
    finally:
        controller.cluster.shutdown()
        replies.write(json.dumps({"ok": True, "stopped": True}) + "\n")


class LocalCluster:
    """A head and ``num_workers`` worker nodes on this machine, each a separate set of Ray processes.

    ``with LocalCluster(ClusterConfig(num_workers=2)) as cluster:`` then run stages with
    ``--address cluster.address``; ``cluster.kill_node(0)`` kills a node, ``cluster.add_node()`` adds one.
    """

    def __init__(self, cfg: ClusterConfig | None = None, root: str | os.PathLike | None = None,
                 start_timeout: float = 240.0) -> None:
        self.cfg = cfg or ClusterConfig()
        self._own_root = root is None
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="gid-cluster-"))
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.address = ""
        self.nodes: list[dict[str, Any]] = []

    def _reply(self, timeout: float) -> dict[str, Any]:
        import selectors

        assert self.proc is not None and self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise TimeoutError(f"local Ray cluster did not answer within {timeout:.0f} s; logs: {self.log_path}")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"local Ray cluster controller exited (code {self.proc.poll()}); logs: {self.log_path}")
        reply = json.loads(line)
        if not reply.pop("ok"):
            raise ValueError(reply["error"])
        return reply

    def _call(self, op: str, timeout: float = 120.0, **args: Any) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return self._reply(timeout)

    @property
    def log_path(self) -> Path:
        return self.root / "controller.log"

    def start(self) -> "LocalCluster":
        self.root.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, RAY_TMPDIR=str(self.root), RAY_USAGE_STATS_ENABLED="0")
        env.pop("RAY_ADDRESS", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gid.testing.local_cluster", json.dumps(asdict(self.cfg)), str(self.root)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.log_path, "w"), text=True, env=env,
            start_new_session=True)
        try:
            state = self._reply(self.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.address, self.nodes = state["address"], state["nodes"]
        return self

    def state(self) -> dict[str, Any]:
        state = self._call("state")
        self.nodes = state["nodes"]
        return state

    def add_node(self) -> dict[str, Any]:
        """Start one more worker node (a replacement, as an autoscaler would) and wait until it is up."""
        info = self._call("add")
        self.state()
        return info

    def kill_node(self, index: int) -> dict[str, Any]:
        """SIGKILL every process of worker node ``index`` (raylet, object store, agents, task workers)."""
        info = self._call("kill", index=index)
        self.state()
        return info

    def worker_pids(self) -> Iterator[tuple[int, int]]:
        """``(node index, pid)`` of every live process under each live worker node's raylet."""
        for node in self.nodes:
            if node["alive"]:
                for pid in [node["raylet_pid"], *procfs.children(node["raylet_pid"])]:
                    yield node["index"], pid

    def process_groups(self) -> dict[int, str]:
        """Every live process of the cluster → ``"node i"`` (worker node i's raylet and all below it) or
        ``"head"`` (GCS, the head's raylet and its workers, the controller, per-node log monitors)."""
        assert self.proc is not None
        groups = {pid: f"node {index}" for index, pid in self.worker_pids()}
        for pid in [self.proc.pid, *procfs.children(self.proc.pid)]:
            groups.setdefault(pid, "head")
        return groups

    def stop(self) -> None:
        """Shut every node down and remove the private temp dir (kept when given as ``root``)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self._call("stop", timeout=60)
                self.proc.wait(timeout=60)
            except (TimeoutError, RuntimeError, BrokenPipeError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll ``predicate()`` until true; TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


if __name__ == "__main__":
    _serve(ClusterConfig(**json.loads(sys.argv[1])), Path(sys.argv[2]))
