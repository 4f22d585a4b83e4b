"""The calibration line every benchmark prints: how fast this machine is today, so figures compare.

Machines of one kind differ by up to 2× from day to day (shared/METHOD.md, "Costs"): one-thread
1024² float32 matrix product (GFLOP/s) and OpenCV DIS "fast" optical flow at 256×160 (ms per pair).
Benchmarks run as scripts, so this file imports as ``calibration``.
"""
from __future__ import annotations

import os

import numpy as np


def calibration_line() -> str:
    """``calibration: sgemm 1 thread … GFLOP/s, DIS fast 256x160 … ms/pair, load …`` (one thread each)."""
    import cv2
    import torch

    from timing import best_ms

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        a = torch.randn(1024, 1024)
        gflops = 2 * 1024**3 / best_ms(lambda: a @ a, 5) / 1e6
        rng = np.random.default_rng(0)
        first = cv2.GaussianBlur(rng.integers(0, 256, (160, 256), dtype=np.uint8), (5, 5), 2)
        second = np.roll(first, (1, 2), axis=(0, 1))
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        flow_ms = best_ms(lambda: dis.calc(first, second, None), 20)
    finally:
        torch.set_num_threads(threads)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"calibration: sgemm 1 thread {gflops:.1f} GFLOP/s, DIS fast 256x160 {flow_ms:.2f} ms/pair, load {load}"
