"""Preprocessing throughput on a local multi-node Ray cluster: 1 vs 2 worker nodes of 1 CPU each.

For each node count a fresh cluster (gid.testing.local_cluster: head with no CPUs + N worker nodes) is
started and `gid preprocess --address` runs on the same synthetic videos as its own driver process,
as a job on a real cluster would. Throughput is clips per second of the whole command (the time it
reports: Ray Data start-up, decode, flow, FFT, write); the 1-node run is the reference, measured in
the same invocation. The load average is printed, since other jobs on the machine skew the ratio.
Each worker node is pinned to a core of its own where the machine has one per node (``--no-pin`` to
turn off): a 1-CPU node is then one core, as on a machine of its own, instead of a node whose helper
threads also run on the cores the other node count leaves idle.

The default work is benchmarks/preprocess.py's (24 videos of 240 frames at 256x160, 10 clips of
T = 150 each: 80-100 s on one 1-CPU node of the 2-core VM), so that the 13-20 s of Ray start-up and
actor imports, which a second node cannot shorten, is a minority of the run; 3 runs by default.

    python benchmarks/scaling.py                  # 240 clips, 3 runs: median and range of the ratio
    python benchmarks/scaling.py --videos 4 --runs 1 --nodes 1 2 3
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gid.datasets.synthetic import SynthConfig, write_dataset
from gid.testing import procfs
from gid.testing.local_cluster import ClusterConfig, LocalCluster


def run_on_cluster(videos: Path, out: Path, nodes: int, args: list[str], pin: bool) -> tuple[int, float, dict]:
    """(clips written, seconds the command reports, CPU seconds by process group) of one `gid preprocess`
    on a fresh ``nodes``-node cluster: ``driver`` (the command), ``head`` (GCS, head raylet and its
    workers: Ray Data's coordinator actors, read tasks) and each worker node (sampled every 0.5 s)."""
    with LocalCluster(ClusterConfig(num_workers=nodes, cpus_per_worker=1, pin_cores=pin)) as cluster:
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        with procfs.CPUTime(cluster.process_groups) as sampled:
            start = sampled.totals()
            result = subprocess.run([sys.executable, "-m", "gid.stages.cli", "preprocess", str(videos), "--out",
                                     str(out), "--address", cluster.address, "--quiet", *args],
                                    capture_output=True, text=True, timeout=3600)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = {name: used - start.get(name, 0.0) for name, used in sampled.totals().items()}
    cpu["driver"] = after.ru_utime + after.ru_stime - reaped.ru_utime - reaped.ru_stime
    if result.returncode != 0:
        raise RuntimeError(f"gid preprocess failed on {nodes} node(s):\n{result.stdout}\n{result.stderr}")
    clips = int(re.search(r"clips: (\d+) written", result.stdout).group(1))
    seconds = float(re.search(r"time: ([\d.]+) s", result.stdout).group(1))
    return clips, seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=24, help="synthetic videos to preprocess")
    parser.add_argument("--video-frames", type=int, default=240, help="frames per synthetic video")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2], help="worker node counts to compare")
    parser.add_argument("--runs", type=int, default=3, help="repeat the comparison, alternating the order")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=None,
                        help="pin each worker node to a core of its own (default: when the machine has a core per node)")
    parser.add_argument("--work", type=Path, default=None, help="folder for videos and outputs (default: a temp dir)")
    parser.add_argument("preprocess_args", nargs="*", default=["--frames", "150", "--stride", "10", "--size", "256x160"],
                        help="arguments passed to gid preprocess (after --)")
    args = parser.parse_args()
    pin = args.pin if args.pin is not None else (os.cpu_count() or 1) >= max(args.nodes)
    work = args.work or Path(tempfile.mkdtemp(prefix="gid-scaling-"))
    videos = work / "synth" / "videos"
    if not videos.is_dir():
        write_dataset(work / "synth", args.videos, SynthConfig(num_frames=args.video_frames), seed=5, progress=False)
    rows = []
    for run in range(args.runs):
        order = args.nodes if run % 2 == 0 else args.nodes[::-1]  # alternate, so drifting load hits both
        for nodes in order:
            load = os.getloadavg()[0]
            clips, seconds, cpu = run_on_cluster(videos, work / f"out-{nodes}-{time.time_ns()}", nodes,
                                                 args.preprocess_args, pin)
            rows.append((run, nodes, clips, seconds, clips / seconds, load, os.getloadavg()[0]))
            used = ", ".join(f"{name} {value:.1f}" for name, value in sorted(cpu.items()))
            print(f"run {run + 1}, {nodes} node(s): {clips} clips in {seconds:.1f} s; CPU s: {used}", flush=True)
    print(f"\n{'run':>4s}{'worker nodes (1 CPU each)':>28s}{'clips':>7s}{'seconds':>9s}{'clips/s':>9s}{'ratio':>7s}"
          f"{'load before/after':>20s}")
    ratios = {n: [] for n in args.nodes}
    for run, nodes, clips, seconds, rate, before, after in rows:
        reference = next(r[4] for r in rows if r[0] == run and r[1] == args.nodes[0])
        ratios[nodes].append(rate / reference)
        print(f"{run + 1:4d}{nodes:28d}{clips:7d}{seconds:9.1f}{rate:9.2f}{rate / reference:7.2f}{before:11.1f} / {after:.1f}")
    for nodes, values in ratios.items():
        if nodes != args.nodes[0]:
            print(f"{nodes} vs {args.nodes[0]} node(s): median ratio {np.median(values):.2f}, "
                  f"range {min(values):.2f}–{max(values):.2f} over {len(values)} run(s)")
    print(f"cores on this machine: {os.cpu_count()}; worker nodes {'pinned to a core each' if pin else 'not pinned'}")

if __name__ == "__main__":
    main()
