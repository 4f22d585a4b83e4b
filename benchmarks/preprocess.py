"""Preprocessing throughput: where the time goes, and how close the Ray pipeline gets to decode speed.

    python benchmarks/preprocess.py [--videos 6] [--video-frames 240] [--frames 150] [--stride 10]
                                    [--size 256x160] [--flow dis] [--work /tmp/gid-bench-preprocess]

Makes synthetic videos once (kept in --work), then measures in the same run:

1. one process, no Ray, stage by stage: decode, flow (forward, frame 0 → t), quality (backward
   flows and checks), FFT (DFT-basis product; numpy ``rfft`` as the reference), encode + write;
2. decode-only throughput (clips/s): the limit of this design, since every clip is decoded once;
3. `gid preprocess` through Ray Data with 1 and 2 flow actors (clips/s, Ray start excluded);
4. the ratio of total (Ray, best worker count) to decode-only throughput.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=6, help="synthetic videos to process")
    parser.add_argument("--video-frames", type=int, default=240, help="frames per synthetic video")
    parser.add_argument("--frames", type=int, default=150, help="frames per clip (T)")
    parser.add_argument("--stride", type=int, default=10, help="a clip starts every STRIDE frames")
    parser.add_argument("--size", default="256x160", help="WIDTHxHEIGHT")
    parser.add_argument("--flow", default="dis", help="flow method")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gid-bench-preprocess"), help="scratch folder")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import pyarrow.parquet  # noqa: F401  (import cost outside the timings)
    import ray

    from gid.datasets.clips import make_clip_row, write_shard
    from gid.datasets.synthetic import SynthConfig, write_dataset
    from gid.datasets.video_reader import iter_clips
    from gid.pipeline.flow import make_flow
    from gid.pipeline.normalize import FrequencyStats
    from gid.pipeline.quality import assess
    from gid.pipeline.spectral import trajectories_to_spectral
    from gid.stages.options import parse_size
    from gid.stages.preprocess import PreprocessConfig, run_preprocess

    width, height = parse_size(args.size)
    synth = args.work / "videos"
    write_dataset(synth, args.videos, SynthConfig(num_frames=args.video_frames, width=width, height=height),
                  seed=0, progress=True)
    sources = sorted(str(p) for p in (synth / "videos").glob("*.mp4"))
    cfg = PreprocessConfig(num_frames=args.frames, stride=args.stride, width=width, height=height, flow=args.flow)
    spec = cfg.spec()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{len(sources)} videos × {args.video_frames} frames, clips T={args.frames} stride {args.stride} "
          f"at {width}x{height}, flow {args.flow}")

    # 1. stage by stage, one process
    flow = make_flow(args.flow)
    times = dict.fromkeys(["decode", "flow", "quality", "fft", "write"], 0.0)
    rfft_time, clips = 0.0, 0
    tick = time.perf_counter()
    shard_dir = args.work / "stage-shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    for n, source in enumerate(sources):
        rows = []
        for start, frames in iter_clips(source, spec):
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
            FrequencyStats(cfg.num_freqs).update(spectral16.astype(np.float32))
            t5 = time.perf_counter()
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
    print(f"\n1. one process, no Ray: {clips} clips in {total:.1f} s = {clips / total:.2f} clips/s")
    for name, seconds in times.items():
        print(f"   {name:8s} {1000 * seconds / clips:8.1f} ms/clip  {100 * seconds / total:5.1f} %")
    print(f"   FFT: numpy rfft {1000 * rfft_time / clips:.1f} ms/clip → DFT-basis product is "
          f"{rfft_time / times['fft']:.1f}x faster")

    # 2. decode only
    start = time.perf_counter()
    decoded = sum(1 for s in sources for _ in iter_clips(s, spec))
    decode_rate = decoded / (time.perf_counter() - start)
    print(f"\n2. decode only (one process): {decode_rate:.2f} clips/s")

    # 3. Ray Data, 1 and 2 flow actors
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
    rates = {}
    for workers in (1, 2):
        out = args.work / f"out-{workers}"
        shutil.rmtree(out, ignore_errors=True)
        summary = run_preprocess(sources, out, cfg, workers=workers, progress=False)
        processed = summary.clips_written + sum(summary.clips_filtered.values())
        rates[workers] = processed / summary.seconds
        print(f"\n3. Ray Data, {workers} flow actor(s): {processed} clips "
              f"({sum(summary.clips_filtered.values())} filtered) in {summary.seconds:.1f} s = {rates[workers]:.2f} clips/s")
    ray.shutdown()
    print(f"\n   2 actors vs 1: {rates[2] / rates[1]:.2f}x")
    print(f"4. total / decode-only throughput: {max(rates.values()) / decode_rate:.2f}")


if __name__ == "__main__":
    main()
