"""Preprocessing memory does not grow with the video's length (small version of benchmarks/memory.py).

The same scene at 640×360 for 5 s and for 20 s goes through `gid preprocess` on the shared local Ray;
the peak private memory (resident minus the object-store pages it maps) of every Ray worker process is
sampled. A decoder that collected a file's
clips before passing them on would hold 47 clips of 48 frames at 256×160 (≈ 280 MiB) for the 20 s
video against 17 (≈ 100 MiB) for the 5 s one; the streaming reader holds one clip at a time, so the
peaks must match within noise and stay under the budget.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gid.testing import procfs

pytestmark = [pytest.mark.ray, pytest.mark.slow]

BUDGET_MIB = 1024  # per Ray worker process, the default budget of benchmarks/memory.py
GROWTH_MIB = 60  # allowed difference between the 20 s and the 5 s run (allocator noise)


def _benchmark():
    spec = importlib.util.spec_from_file_location("memory_bench", Path(__file__).parents[1] / "benchmarks" / "memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peak_worker_memory_is_independent_of_video_length(ray_local, tmp_path):
    from gid.stages.preprocess import PreprocessConfig, run_preprocess

    bench = _benchmark()
    raylet = ray_local._private.worker._global_node.all_processes["raylet"][0].process.pid
    cfg = PreprocessConfig(num_frames=48, stride=12, width=256, height=160)
    peaks = {}
    for seconds in (5, 20):
        video = bench.write_long_video(tmp_path / f"v{seconds}.mp4", seconds, 640, 360)
        with procfs.PeakRSS([raylet], interval=0.05) as sampler:
            summary = run_preprocess([str(video)], tmp_path / f"out{seconds}", cfg, progress=False)
        assert summary.videos_ok == 1 and summary.clips_written == (seconds * 30 - 48) // 12 + 1
        workers = [private for private, _, title in sampler.peak.values()
                   if title.startswith("ray::") and "Agent" not in title]
        assert workers, "no Ray worker process was sampled"
        peaks[seconds] = max(workers) / 2**20
    assert peaks[20] <= BUDGET_MIB
    assert peaks[20] - peaks[5] <= GROWTH_MIB, f"peak worker RSS grew with length: {peaks}"
