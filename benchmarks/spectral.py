"""Spectral volume speed: gid's DFT-basis product vs numpy's FFT, measured in the same run.

    python benchmarks/spectral.py [--frames 150] [--size 256x160] [--repeats 5]

Prints ms per clip and the ratio (reference time / gid time; > 1 means gid is faster) for the
forward transform (trajectories → K bins) and the inverse (K bins → trajectories), on numpy and
on torch (CPU, or CUDA when present).
"""
from __future__ import annotations

import argparse
import platform

import numpy as np
import torch

from gid.pipeline.spectral import spectral_to_trajectories, trajectories_to_spectral
from gid.stages.options import parse_size
from timing import best_ms


def numpy_rfft(traj: np.ndarray, num_freqs: int) -> np.ndarray:
    return np.fft.rfft(traj, axis=0)[:num_freqs]


def numpy_irfft(spec: np.ndarray, num_frames: int) -> np.ndarray:
    full = np.zeros((num_frames // 2 + 1, *spec.shape[1:]), np.complex64)
    full[: len(spec)] = spec
    return np.fft.irfft(full, n=num_frames, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--size", default="256x160")
    parser.add_argument("--num-freqs", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    width, height = parse_size(args.size)
    T, K = args.frames, args.num_freqs
    rng = np.random.default_rng(0)
    traj = rng.normal(size=(T, 2, height, width)).astype(np.float32)
    spec_complex = numpy_rfft(traj, K)
    spec = trajectories_to_spectral(traj, K)
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}; "
          f"clip (T={T}, 2, {height}, {width}), K={K}")
    print(f"{'case':34s} {'reference ms':>13s} {'gid ms':>8s} {'ratio':>6s}")
    cases = [
        ("forward numpy (rfft)", lambda: numpy_rfft(traj, K), lambda: trajectories_to_spectral(traj, K)),
        ("inverse numpy (irfft)", lambda: numpy_irfft(spec_complex, T), lambda: spectral_to_trajectories(spec, T)),
    ]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    traj_t, spec_t = torch.from_numpy(traj).to(device), torch.from_numpy(spec).to(device)

    def sync(x):
        if device == "cuda":
            torch.cuda.synchronize()
        return x

    cases += [
        (f"forward torch {device} (torch.fft.rfft)", lambda: sync(torch.fft.rfft(traj_t, dim=0)[:K]),
         lambda: sync(trajectories_to_spectral(traj_t, K))),
        (f"inverse torch {device} (torch.fft.irfft)",
         lambda: sync(torch.fft.irfft(torch.nn.functional.pad(torch.complex(spec_t[:, 0::2], spec_t[:, 1::2]), (0, 0, 0, 0, 0, 0, 0, T // 2 + 1 - K)), n=T, dim=0)),
         lambda: sync(spectral_to_trajectories(spec_t, T))),
    ]
    for name, reference, ours in cases:
        ref_ms, our_ms = best_ms(reference, args.repeats), best_ms(ours, args.repeats)
        print(f"{name:34s} {ref_ms:13.1f} {our_ms:8.1f} {ref_ms / our_ms:6.2f}x")


if __name__ == "__main__":
    main()
