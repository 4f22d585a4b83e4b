"""Preprocessing throughput and driver cost: where the time goes, Ray Data against one process.

    python benchmarks/preprocess.py [--videos 24] [--video-frames 240] [--frames 150] [--stride 10]
                                    [--size 256x160] [--flow dis] [--work /tmp/gid-bench-preprocess]
    python benchmarks/preprocess.py --driver-clips 100 1000      # driver CPU and memory vs clips

Makes synthetic videos once (kept in --work), then measures in the same run:

1. one process, no Ray, stage by stage: decode, flow (forward, frame 0 → t), quality (split into the
   4 backward flows of the consistency check and the other checks), FFT (DFT-basis product; numpy
   ``rfft`` as the reference), encode + write;
2. one process, no Ray, pinned to one core, the exact work of a Ray worker (``process_source`` per video: decode, flow,
   quality, spectral volume, Arrow-tensor Parquet shards) — the reference rate;
3. `gid preprocess` as its own driver process on a local Ray of 2 CPUs (started here, so Ray start-up is
   excluded) with 1 and 2 source actors: clips/s, ratio to (2), driver CPU time per clip
   (``wait4`` rusage of the child), the driver's peak resident memory (``VmHWM``, polled), and the CPU
   seconds of the source actors and of Ray's other processes (sampled every 0.5 s): how busy the 2
   CPUs were.

``--driver-clips N …`` instead runs (3) with 2 actors on small clips (T = 30 at 64×48, stride 5,
videos of 120 frames: 19 clips each) for about N clips each, and prints the driver's CPU time per clip
(total and marginal between the smallest and largest run) and its peak memory.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def ray_processes(driver: int, actors: set[int]) -> dict[int, str]:
    """This process's Ray processes (started by ``ray.init`` here) → ``"source actors"`` (the workers that
    run the SourceStage; ``actors`` remembers them, since a worker's title changes when it is done) or
    ``"Ray"`` (GCS, raylet, read tasks, Ray Data's own actors); ``driver`` excluded."""
    from gid.testing import procfs

    groups = {}
    for pid in procfs.children(os.getpid()):
        if pid != driver:
            if "SourceStage" in procfs.command_line(pid):
                actors.add(pid)
            groups[pid] = "source actors" if pid in actors else "Ray"
    return groups


def run_driver(args: list[str], address: str) -> dict[str, float]:
    """`gid preprocess ARGS --address` as a child process: clips, reported seconds, driver CPU s and peak MiB,
    and the CPU seconds of the source actors and of Ray's other processes during the run (sampled)."""
    from gid.testing import procfs

    command = [sys.executable, "-m", "gid.stages.cli", "preprocess", *args, "--address", address, "--quiet"]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        actors: set[int] = set()
        with procfs.CPUTime(lambda: ray_processes(proc.pid, actors)) as ray_cpu:
            ray_start = ray_cpu.totals()
            peak = 0  # VmHWM: the high-water mark of this exec'ed image (ru_maxrss would include the forked parent's)
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                try:
                    text = Path(f"/proc/{proc.pid}/status").read_text()
                    peak = max(peak, int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)))
                except (OSError, AttributeError):
                    pass
                time.sleep(0.1)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"gid preprocess failed:\n{stdout}\n{stderr}")
    clips = int(re.search(r"clips: (\d+) written, (\d+) filtered", stdout).group(1))
    filtered = int(re.search(r"clips: \d+ written, (\d+) filtered", stdout).group(1))
    first = re.search(r"first source done after ([\d.]+) s", stdout)
    used = {name: cpu - ray_start.get(name, 0.0) for name, cpu in ray_cpu.totals().items()}
    return {"clips": clips + filtered, "seconds": float(re.search(r"time: ([\d.]+) s", stdout).group(1)),
            "first": float(first.group(1)) if first else math.nan,
            "cpu": usage.ru_utime + usage.ru_stime, "peak_mib": peak / 1024,
            "actors_cpu": used.get("source actors", 0.0), "ray_cpu": used.get("Ray", 0.0), "wall": wall}


def stage_by_stage(sources: list[str], cfg, work: Path) -> None:
    from gid.datasets.clip_table import make_clip_row, write_shard
    from gid.datasets.clip_stream import iter_clips
    from gid.pipeline.flow import make_flow
    from gid.pipeline.normalize import FrequencyStats
    from gid.pipeline.clip_filters import assess
    from gid.pipeline.spectral import trajectories_to_spectral

    flow = make_flow(cfg.flow)
    times = dict.fromkeys(["decode", "flow", "quality", "fft", "write"], 0.0)
    backward, rfft_time, clips = 0.0, 0.0, 0
    shard_dir = work / "stage-shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    tick = time.perf_counter()
    for n, source in enumerate(sources):
        rows = []
        for start, frames in iter_clips(source, cfg.spec()):
            now = time.perf_counter()
            times["decode"] += now - tick
            traj = flow.trajectories(frames)
            t1 = time.perf_counter()
            assess(frames, traj, flow, cfg.quality)
            t2 = time.perf_counter()
            spectral = trajectories_to_spectral(traj, cfg.num_freqs)
            t3 = time.perf_counter()
            np.fft.rfft(traj, axis=0)[: cfg.num_freqs]
            t4 = time.perf_counter()
            spectral16 = spectral.astype("<f2")
            rows.append(make_clip_row(source, start, cfg.fps, frames[0], spectral16, cfg.num_frames, 0.0))
            FrequencyStats(cfg.num_freqs).update(spectral16)
            t5 = time.perf_counter()
            ts = np.unique(np.linspace(1, cfg.num_frames - 1, cfg.quality.num_checks).round().astype(int))
            flow.pairs(frames[ts], np.broadcast_to(frames[0], frames[ts].shape))  # the check's backward flows again
            backward += time.perf_counter() - t5
            times["flow"] += t1 - now
            times["quality"] += t2 - t1
            times["fft"] += t3 - t2
            rfft_time += t4 - t3
            times["write"] += t5 - t4
            clips += 1
            tick = time.perf_counter()
        t0 = time.perf_counter()
        write_shard(rows, shard_dir / f"{n:05d}.parquet")
        times["write"] += time.perf_counter() - t0
        tick = time.perf_counter()
    total = sum(times.values())
    print(f"\n1. one process, stage by stage: {clips} clips in {total:.1f} s = {clips / total:.2f} clips/s ({load()})")
    for name, seconds in times.items():
        print(f"   {name:8s} {1000 * seconds / clips:8.1f} ms/clip  {100 * seconds / total:5.1f} %")
    print(f"   of quality: {cfg.quality.num_checks} backward flows {1000 * backward / clips:.1f} ms/clip "
          f"({100 * backward / times['quality']:.0f} % of the check)")
    print(f"   FFT: numpy rfft {1000 * rfft_time / clips:.1f} ms/clip → DFT-basis product is "
          f"{rfft_time / times['fft']:.1f}x faster")


@contextlib.contextmanager
def one_core():
    """Pin every thread of this process (OpenBLAS's included) to one CPU, as a Ray actor of 1 CPU is."""
    threads = [int(t) for t in os.listdir("/proc/self/task")]
    saved = {t: os.sched_getaffinity(t) for t in threads}
    for t in threads:
        os.sched_setaffinity(t, {min(saved[t])})
    try:
        yield
    finally:
        for t, cpus in saved.items():
            try:
                os.sched_setaffinity(t, cpus)
            except OSError:  # a thread that has ended
                pass


def one_process(sources: list[str], cfg, work: Path) -> float:
    """Clips/s of the workers' own function, one process pinned to one core."""
    from gid.pipeline.flow import make_flow
    from gid.stages.preprocess import process_source, source_key

    out = work / "one-process"
    shutil.rmtree(out, ignore_errors=True)
    flow = make_flow(cfg.flow)
    start, clips = time.perf_counter(), 0
    for source in sources:
        result = process_source(source_key(source), source, math.nan, math.nan, cfg, flow, out)
        clips += result.clips_written + sum(result.filtered.values())
    seconds = time.perf_counter() - start
    print(f"\n2. one process on one core, process_source per video (a worker's work): {clips} clips in {seconds:.1f} s "
          f"= {clips / seconds:.2f} clips/s ({load()})")
    return clips / seconds


def cli_args(sources_dir: Path, out: Path, cfg, width: int, height: int) -> list[str]:
    return [str(sources_dir), "--out", str(out), "--frames", str(cfg.num_frames), "--stride", str(cfg.stride),
            "--size", f"{width}x{height}", "--flow", cfg.flow]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24,
                        help="synthetic videos to process (24: start-up is a small part of the Ray runs)")
    parser.add_argument("--video-frames", type=int, default=240, help="frames per synthetic video")
    parser.add_argument("--frames", type=int, default=150, help="frames per clip (T)")
    parser.add_argument("--stride", type=int, default=10, help="a clip starts every STRIDE frames")
    parser.add_argument("--size", default="256x160", help="WIDTHxHEIGHT")
    parser.add_argument("--flow", default="dis", help="flow method")
    parser.add_argument("--driver-clips", type=int, nargs="*", default=None,
                        help="measure the driver at about these clip counts (small clips) instead")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gid-bench-preprocess"), help="scratch folder")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import ray

    from gid.datasets.synthetic import SynthConfig, write_dataset
    from gid.stages.options import parse_size
    from gid.stages.preprocess import PreprocessConfig

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; {load()}")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    address = ray.get_runtime_context().gcs_address
    try:
        if args.driver_clips:
            driver_scaling(args.driver_clips, args.work, address)
            return
        width, height = parse_size(args.size)
        synth = args.work / f"videos-{args.videos}x{args.video_frames}-{width}x{height}"
        if not (synth / "manifest.parquet").is_file():
            write_dataset(synth, args.videos, SynthConfig(num_frames=args.video_frames, width=width, height=height),
                          seed=0, progress=True)
        sources = sorted(str(p) for p in (synth / "videos").glob("*.mp4"))
        cfg = PreprocessConfig(num_frames=args.frames, stride=args.stride, width=width, height=height, flow=args.flow)
        print(f"{len(sources)} videos × {args.video_frames} frames, clips T={args.frames} stride {args.stride} "
              f"at {width}x{height}, flow {args.flow}")
        stage_by_stage(sources, cfg, args.work)
        with one_core():
            reference = one_process(sources, cfg, args.work)
        for workers in (1, 2):
            out = args.work / f"out-{workers}"
            shutil.rmtree(out, ignore_errors=True)
            run = run_driver(cli_args(synth / "videos", out, cfg, width, height) + ["--workers", str(workers)], address)
            rate = run["clips"] / run["seconds"]
            # After the first source: Ray's and the actors' start-up is paid once per run, not per clip.
            steady = run["clips"] * (1 - 1 / len(sources)) / (run["seconds"] - run["first"])
            print(f"\n3. Ray Data, {workers} source actor(s): {run['clips']} clips in {run['seconds']:.1f} s = "
                  f"{rate:.2f} clips/s = {rate / reference:.2f}x one process; after the first source (at "
                  f"{run['first']:.1f} s): {steady:.2f} clips/s = {steady / reference:.2f}x; driver "
                  f"{1000 * run['cpu'] / run['clips']:.1f} ms CPU/clip, peak {run['peak_mib']:.0f} MiB ({load()})")
            busy = (run["actors_cpu"] + run["ray_cpu"] + run["cpu"]) / (2 * run["wall"])
            print(f"   CPU s: source actors {run['actors_cpu']:.1f}, Ray's other processes {run['ray_cpu']:.1f}, "
                  f"driver {run['cpu']:.1f} (imports included): the 2 CPUs {100 * busy:.0f} % busy over the "
                  f"command's {run['wall']:.1f} s")
    finally:
        ray.shutdown()


def driver_scaling(targets: list[int], work: Path, address: str) -> None:
    from gid.datasets.synthetic import SynthConfig, write_dataset
    from gid.stages.preprocess import PreprocessConfig

    cfg = PreprocessConfig(num_frames=30, stride=5, width=64, height=48)
    per_video = (120 - 30) // 5 + 1
    runs = []
    for target in sorted(targets):
        videos = max(1, round(target / per_video))
        synth = work / f"small-{videos}"
        if not (synth / "manifest.parquet").is_file():
            write_dataset(synth, videos, SynthConfig(num_frames=120, width=64, height=48), seed=1, progress=False)
        out = work / f"driver-{videos}"
        shutil.rmtree(out, ignore_errors=True)
        run = run_driver(cli_args(synth / "videos", out, cfg, 64, 48) + ["--workers", "2"], address)
        runs.append(run)
        print(f"{run['clips']:5d} clips ({videos} videos, T=30 at 64x48): {run['seconds']:.1f} s; driver CPU "
              f"{run['cpu']:.2f} s = {1000 * run['cpu'] / run['clips']:.2f} ms/clip; driver peak {run['peak_mib']:.0f} MiB "
              f"({load()})", flush=True)
    if len(runs) > 1:
        first, last = runs[0], runs[-1]
        marginal = (last["cpu"] - first["cpu"]) / (last["clips"] - first["clips"])
        print(f"marginal driver CPU per clip ({first['clips']} → {last['clips']} clips): {1000 * marginal:.2f} ms; "
              f"peak memory ratio {last['peak_mib'] / first['peak_mib']:.2f}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this benchmark process, which started Ray: peak {own:.0f} MiB, not part of the driver figures)")


if __name__ == "__main__":
    main()
