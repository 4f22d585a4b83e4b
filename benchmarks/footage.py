"""`gid loop` on footage with known motion: fidelity against T, and time and memory at 640×360.

The footage is a real photo (scikit-learn's flower.jpg, CC BY 2.0) swayed by a known field
(gid.datasets.swaying_photo: 0.6 Hz 3 px, 2.2 Hz 1.2 px and 4.5 Hz 0.6 px components).

1. Loop fidelity against T (K = 16): PSNR of loop frame t against real frame t and of frame 0 held
   still, at 256×170, in one process (pipeline functions, no encoding).
2. `gid loop` on a 10 s 640×360 clip (T = 300, --max-side 640) as a subprocess under
   /usr/bin/time -v: wall time and peak resident memory.

    python benchmarks/footage.py [--skip-loop-time]
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def calibration() -> str:
    """One-thread 1024² sgemm GFLOP/s and DIS fast ms per pair at 256×160 (METHOD.md: print beside timings)."""
    import torch

    torch.set_num_threads(1)
    a = torch.randn(1024, 1024)
    start = time.perf_counter()
    for _ in range(10):
        a @ a
    gflops = 10 * 2 * 1024**3 / (time.perf_counter() - start) / 1e9
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    x = cv2.GaussianBlur(rng.integers(0, 255, (160, 256), np.uint8), (5, 5), 1.5)
    y = np.roll(x, 2, axis=1)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    start = time.perf_counter()
    for _ in range(50):
        dis.calc(x, y, None)
    ms = (time.perf_counter() - start) / 50 * 1e3
    load = os.getloadavg()[0]
    return f"calibration: sgemm {gflops:.1f} GFLOP/s (1 thread), DIS fast {ms:.2f} ms/pair at 256x160, load {load:.1f}"


def fidelity_against_t() -> None:
    from gid.datasets.swaying_photo import SwayConfig, swaying_video
    from gid.pipeline.flow import make_flow
    from gid.pipeline.video_loop import fidelity, reference_frames, render_loop, video_motion

    print("T  seconds  loop dB  still dB  gain dB  seam (steps)")
    for num_frames in (32, 64, 128, 256):
        frames, _ = swaying_video(SwayConfig(num_frames=num_frames, width=256, height=170))
        motion = video_motion(frames, 30.0, make_flow("dis"), 16)
        score = fidelity(render_loop(motion), reference_frames(frames, motion))
        print(f"{num_frames:<3} {num_frames / 30:5.2f}  {score.psnr_loop:7.2f}  {score.psnr_still:8.2f}  "
              f"{score.gain:+7.2f}  {score.seam:5.2f}", flush=True)


def loop_time() -> None:
    from gid.datasets.swaying_photo import SwayConfig, swaying_video
    from gid.datasets.video_io import write_video

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        write_video(clip, swaying_video(SwayConfig(num_frames=300, width=640, height=360))[0], 30, crf=12)
        gid = Path(sys.executable).with_name("gid")
        cmd = ["/usr/bin/time", "-v", str(gid), "loop", str(clip), "--out", str(Path(tmp) / "loop.mp4"),
               "--frames", "300", "--max-side", "640"]
        res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
        wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", res.stderr).group(1)
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr).group(1))
        print(res.stdout.strip())
        print(f"gid loop, 10 s 640x360 clip (T = 300): wall {wall}, peak RSS {rss / 2**20:.2f} GiB, "
              f"exit {res.returncode}")


if __name__ == "__main__":
    print(calibration(), flush=True)
    fidelity_against_t()
    if "--skip-loop-time" not in sys.argv:
        loop_time()
    print(calibration())
