"""Peak memory of `gid preprocess` on long high-resolution videos: is it independent of the length?

Generates H.264 videos of one scene (a `gid synth` plant clip, upscaled, looping) at a high resolution
and two lengths, preprocesses each on a fresh local Ray (``--num-cpus`` CPUs, spilling configured by
gid.stages.ray_runtime), and samples the resident memory (RSS) of every Ray worker process and of
the driver every 0.1 s. Prints the peak per worker role for each length, the long/short ratio, and
checks them against ``--budget-mb``. Private memory (resident minus shared) is what a worker holds
itself; resident shared memory is Ray's object store mapped into it, bounded by the store's size. Videos are written to ``--work`` (default /tmp), never committed.

    python benchmarks/memory.py                       # 3840x2160, 60 s and 120 s
    python benchmarks/memory.py --seconds 4 8 --size 1280x720   # quick look
"""
from __future__ import annotations

import argparse
import multiprocessing
import re
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np

from gid.datasets.synthetic import SynthConfig, generate_video
from gid.stages.options import parse_size


def write_long_video(path: Path, seconds: float, width: int, height: int, fps: int = 30, seed: int = 3) -> Path:
    """A ``width × height`` H.264 video of ``seconds``: a 2 s synthetic plant clip, upscaled and looped.

    Frames are built directly as YUV 4:2:0 planes (upscaling Y and the half-size chroma planes), the
    cheapest route to a big frame; x264 ``ultrafast`` encodes it.
    """
    import av

    clip = generate_video(seed, 0, SynthConfig(num_frames=2 * fps, fps=fps, width=256, height=144)).frames
    small = [cv2.cvtColor(f, cv2.COLOR_RGB2YUV) for f in clip]

    def frame_yuv420(index: int) -> np.ndarray:
        n = index % (2 * len(small) - 2)  # play forward then backward: no jump at the loop
        yuv = small[n if n < len(small) else 2 * len(small) - 2 - n]
        y = cv2.resize(yuv[..., 0], (width, height), interpolation=cv2.INTER_LINEAR)
        u = cv2.resize(yuv[..., 1], (width // 2, height // 2), interpolation=cv2.INTER_LINEAR)
        v = cv2.resize(yuv[..., 2], (width // 2, height // 2), interpolation=cv2.INTER_LINEAR)
        return np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(height * 3 // 2, width)

    tmp = path.with_name(f".{path.name}")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30"}
        for i in range(int(round(seconds * fps))):
            frame = av.VideoFrame.from_ndarray(frame_yuv420(i), format="yuv420p")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return path


def role(title: str) -> str:
    """A worker's role from its process title: ``ray::MapWorker(...)`` → the stage it runs."""
    if any(key in title for key in ("decode_source", "FlatMap", "ReadVideo")):
        return "decode task"
    if "MotionStage" in title:
        return "flow actor"
    match = re.match(r"ray::(\w+)", title)
    return match.group(1) if match else Path(title.split(" ")[0]).name or "?"


def measure(video: Path, out: Path, num_cpus: int, frames: int, size: str) -> dict[str, float]:
    """Preprocess ``video`` on a fresh local Ray; peak private and resident MiB per worker role and driver."""
    import ray

    from gid.testing import procfs
    from gid.stages.preprocess import PreprocessConfig, run_preprocess
    from gid.stages.ray_runtime import init_ray

    width, height = parse_size(size)
    shutil.rmtree(out, ignore_errors=True)
    init_ray(num_cpus=num_cpus)
    try:
        start = time.perf_counter()
        with procfs.PeakRSS([os.getpid()]) as peaks:  # the driver and every Ray process it started
            summary = run_preprocess([str(video)], out, PreprocessConfig(num_frames=frames, width=width, height=height),
                                     progress=False)
        seconds = time.perf_counter() - start
    finally:
        ray.shutdown()
    per_role: dict[str, float] = {}
    for pid, (private, resident, title) in peaks.peak.items():
        name = "driver" if pid == os.getpid() else role(title)
        per_role[name] = max(per_role.get(name, 0.0), private / 2**20)
        per_role[f"{name} +shm"] = max(per_role.get(f"{name} +shm", 0.0), resident / 2**20)
    per_role["_clips"] = summary.clips_written
    per_role["_seconds"] = seconds
    return per_role


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[60, 120], help="video lengths to compare")
    parser.add_argument("--size", default="3840x2160", help="WIDTHxHEIGHT of the generated videos")
    parser.add_argument("--clip-size", default="256x160", help="--size of gid preprocess")
    parser.add_argument("--frames", type=int, default=150, help="--frames of gid preprocess")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--budget-mb", type=float, default=1024, help="peak RSS allowed per Ray worker process")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gid-memory"), help="folder for videos and outputs")
    args = parser.parse_args()
    width, height = parse_size(args.size)
    args.work.mkdir(parents=True, exist_ok=True)
    results = {}
    for seconds in args.seconds:
        video = args.work / f"long-{args.size}-{seconds:g}s.mp4"
        if not video.exists():  # in a child process, so that the driver's measured memory is its own
            start = time.perf_counter()
            child = multiprocessing.get_context("spawn").Process(target=write_long_video,
                                                                 args=(video, seconds, width, height))
            child.start()
            child.join()
            print(f"generated {video} ({video.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - start:.0f} s")
        results[seconds] = measure(video, args.work / f"out-{seconds:g}", args.num_cpus, args.frames, args.clip_size)
        print(f"{seconds:g} s: {results[seconds]['_clips']} clips in {results[seconds]['_seconds']:.0f} s")
    roles = sorted({r for res in results.values() for r in res if not r.startswith("_")})
    short, long = min(results), max(results)
    print(f"\npeak memory (MiB) of {args.size} video, clips {args.clip_size}x{args.frames}, {args.num_cpus} CPUs; "
          "'+shm' rows: resident including the object-store pages the process maps")
    print(f"{'process':36s}" + "".join(f"{s:>10g} s" for s in sorted(results)) + f"{'ratio':>9s}")
    for name in roles:
        values = [results[s].get(name, float("nan")) for s in sorted(results)]
        ratio = results[long].get(name, np.nan) / results[short].get(name, np.nan)
        print(f"{name:36s}" + "".join(f"{v:12.0f}" for v in values) + f"{ratio:9.2f}")
    workers = [v for res in results.values() for r, v in res.items() if r in ("decode task", "flow actor")]
    verdict = "within" if max(workers) <= args.budget_mb else "OVER"
    print(f"largest private peak of a decode/flow worker {max(workers):.0f} MiB: {verdict} the budget of "
          f"{args.budget_mb:.0f} MiB (the object store adds at most its configured size)")


if __name__ == "__main__":
    main()
