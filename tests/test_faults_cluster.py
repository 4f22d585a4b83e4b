"""Fault drills on a real multi-node Ray cluster on this machine (head + two 1-CPU worker nodes).

`gid preprocess --address` runs as its own driver process, exactly as on a cluster; the drills kill a
worker node (every one of its processes, SIGKILL) while clips are being written, and SIGTERM the
driver. Both must end with the rows of an uninterrupted run: same clip ids and values, no
duplicates, no half-written shard.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gid.datasets.synthetic import SynthConfig, write_dataset
from gid.testing import procfs
from gid.testing.local_cluster import ClusterConfig, LocalCluster, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ARGS = ["--frames", "48", "--stride", "12", "--size", "128x80", "--quiet"]
NUM_GOOD = 5  # videos of 60 frames: 2 clips each


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(ClusterConfig(num_workers=2, cpus_per_worker=1, pin_cores=True)) as running:
        yield running


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    write_dataset(root / "synth", 3, SynthConfig(num_frames=60, width=128, height=80), seed=11, progress=False)
    originals = sorted((root / "synth" / "videos").glob("*.mp4"))
    folder = root / "videos"
    folder.mkdir()
    for i in range(NUM_GOOD):
        (folder / f"v{i}.mp4").symlink_to(originals[i % 3])
    (folder / "broken.mp4").write_bytes(b"not a video")
    return folder


@pytest.fixture(scope="module")
def clean(videos, ray_local, tmp_path_factory):
    """An uninterrupted run of the same command on local Ray: the reference."""
    from gid.stages.preprocess import PreprocessConfig, run_preprocess

    out = tmp_path_factory.mktemp("clean")
    cfg = PreprocessConfig(num_frames=48, stride=12, width=128, height=80)
    run_preprocess([str(videos)], out, cfg, progress=False)
    return out


def start_driver(videos: Path, out: Path, address: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gid.stages.cli", "preprocess", str(videos), "--out", str(out),
                             "--address", address, *ARGS], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"the run did not finish within {timeout:.0f} s:\n{output[-3000:]}")
    assert proc.returncode == 0, output[-3000:]
    return output


def done_markers(out: Path) -> int:
    """Sources in the done log (one Parquet file per commit)."""
    parts = sorted((out / "done").glob("[!.]*.parquet")) if (out / "done").is_dir() else []
    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts)


def rows(out: Path) -> list[tuple[str, bytes]]:
    """Every clip row as (clip_id, spectral bytes); each shard must be a complete Parquet file."""
    assert not [p for p in (out / "clips").iterdir() if p.name.startswith(".")], "temporary files left in clips/"
    assert not list((out / ".pending").glob("*")), "shards of unfinished sources left behind"
    found = []
    for shard in sorted((out / "clips").glob("*.parquet")):
        table = pq.read_table(shard, columns=["clip_id", "spectral"])
        found += list(zip(table["clip_id"].to_pylist(), table["spectral"].to_pylist()))
    return sorted(found)


def assert_same_as_clean(out: Path, clean: Path) -> None:
    got, want = rows(out), rows(clean)
    ids = [clip for clip, _ in got]
    assert len(ids) == len(set(ids)), "duplicated clips"
    assert len(want) == 2 * NUM_GOOD and ids == [clip for clip, _ in want]
    assert got == want, "spectral volumes differ from the uninterrupted run"
    errors = pq.read_table(out / "errors").to_pylist()
    assert [e["source"].endswith("broken.mp4") for e in errors] == [True]


def busy_workers(cluster: LocalCluster, index: int) -> list[str]:
    """Titles of the task/actor worker processes of node ``index`` that are doing work."""
    titles = [procfs.command_line(pid) for node, pid in cluster.worker_pids() if node == index]
    return [t for t in titles if t.startswith("ray::") and "Agent" not in t and "IDLE" not in t]


def test_worker_node_killed_while_clips_are_written(cluster, videos, clean, tmp_path):
    out = tmp_path / "out"
    proc = start_driver(videos, out, cluster.address)
    wait_for(lambda: done_markers(out) >= 1 or proc.poll() is not None, 240, "the first finished video")
    victim = next(n["index"] for n in cluster.nodes if n["alive"])
    working = busy_workers(cluster, victim)
    assert proc.poll() is None and done_markers(out) < NUM_GOOD + 1, "the run should still be going"
    assert working, "the node to kill should be running part of the job"
    cluster.kill_node(victim)
    cluster.add_node()  # a replacement joins, as an autoscaler or KubeRay would bring one
    output = finish(proc)
    assert f"videos: {NUM_GOOD} ok, 1 failed" in output
    assert_same_as_clean(out, clean)


def test_driver_sigterm_then_rerun_finishes_without_redoing_work(cluster, videos, clean, tmp_path):
    out = tmp_path / "out"
    proc = start_driver(videos, out, cluster.address)
    wait_for(lambda: done_markers(out) >= 1 or proc.poll() is not None, 240, "the first finished video")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0, "the driver should have been stopped by SIGTERM"
    finished = done_markers(out)
    assert 1 <= finished < NUM_GOOD + 1
    shards = {p.name: p.stat().st_mtime_ns for p in (out / "clips").glob("*.parquet")}

    output = finish(start_driver(videos, out, cluster.address))
    assert f"{finished} already done (skipped)" in output
    assert {n: (out / "clips" / n).stat().st_mtime_ns for n in shards} == shards, "finished shards were rewritten"
    assert_same_as_clean(out, clean)


@pytest.fixture(scope="module")
def clip_table(tmp_path_factory):
    """A clip table of 8 synthetic clips with their exact motion: `gid render --spectral` input."""
    from gid.datasets.clip_table import synthetic_to_clips

    root = tmp_path_factory.mktemp("render")
    write_dataset(root / "synth", 8, SynthConfig(num_frames=60, width=128, height=80), seed=3, progress=False)
    synthetic_to_clips(root / "synth", root / "clips")
    return next((root / "clips" / "clips").glob("*.parquet"))


def test_render_actor_killed_every_video_written_once(cluster, clip_table, tmp_path):
    """SIGKILL of the only render actor mid-run: Ray restarts it and retries its batch, so every video
    ends `ok`, written once.

    Tried broken: the render actors with ``max_restarts=0, max_task_retries=0`` (passed to map_batches in
    stages/bulk_render.py, overriding Ray Data's defaults) fail here: `gid render` ends with exit code 1 and
    ``gid: error: Ray failed: ActorDiedError: The actor died unexpectedly before finishing this task.;
    see Ray's log …``."""
    out = tmp_path / "render"
    proc = subprocess.Popen([sys.executable, "-m", "gid.stages.cli", "render", str(clip_table), "--spectral",
                             "--out", str(out), "--frames", "150", "--batch-size", "1", "--num-workers", "1",
                             "--renderer", "splat", "--address", cluster.address],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    parts = lambda: list((out / "manifest").glob("*.parquet")) if (out / "manifest").is_dir() else []  # noqa: E731
    wait_for(lambda: parts() or proc.poll() is not None, 240, "the first rendered video")
    actors = [pid for _, pid in cluster.worker_pids() if "MotionRenderer" in procfs.command_line(pid)]
    assert proc.poll() is None and len(parts()) < 8, "the run should still be going"
    assert len(actors) == 1, "one render actor should be running"
    os.kill(actors[0], signal.SIGKILL)
    output = finish(proc)

    manifest = pq.read_table(out / "manifest.parquet").to_pylist()
    sources = [row["source"] for row in manifest]
    assert sorted(sources) == sorted(f"{clip_table}#{i}" for i in range(8)), "every video listed exactly once"
    assert [row["status"] for row in manifest] == ["ok"] * 8, manifest
    assert not (out / "errors").is_dir() or not list((out / "errors").iterdir()), "no error rows"
    for row in manifest:
        assert (out / row["video"]).is_file()
    videos = sorted(p.name for p in (out / "videos").iterdir())
    assert videos == sorted(Path(r["video"]).name for r in manifest if r["status"] == "ok"), "no extra or partial videos"
    assert "rendered" in output


def test_pinned_nodes_run_every_process_on_their_own_cores(cluster):
    """Each worker node of a pinned cluster (a 1-CPU node = one core) keeps its raylet and every worker
    it started, the drills' replacement node included, on its cores; nodes take distinct cores."""
    cluster.state()
    live = [node for node in cluster.nodes if node["alive"]]
    cores = {node["index"]: set(node["cores"]) for node in live}
    assert all(len(c) == 1 for c in cores.values())
    if (os.cpu_count() or 1) >= 2:
        assert cores[live[0]["index"]] != cores[live[1]["index"]]
    processes = list(cluster.worker_pids())
    assert len(processes) > len(live)  # workers, not only raylets
    for index, pid in processes:
        try:
            assert os.sched_getaffinity(pid) == cores[index], procfs.command_line(pid)
        except ProcessLookupError:
            pass
