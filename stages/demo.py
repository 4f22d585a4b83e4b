"""The end-to-end demo: each step is a real `gid` command, printed, run, and skipped when its output exists."""
from __future__ import annotations

import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DemoConfig:
    """Embedded defaults sized for a 2-core CPU machine."""

    out: Path = Path("results/demo")
    num_videos: int = 24
    seed: int = 0
    frames: int = 150
    size: str = "256x160"
    steps: list[str] = field(default_factory=lambda: ["synth", "preview"])


def run_step(args: list[str], done_marker: Path) -> None:
    """Run ``gid ARGS`` unless ``done_marker`` exists; print the command so users can rerun it."""
    line = "gid " + shlex.join(args)
    if done_marker.exists():
        print(f"[skip] {line}   ({done_marker} exists)")
        return
    print(f"[run]  {line}", flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gid.stages.cli", *args], check=True)
    print(f"       done in {time.perf_counter() - start:.0f} s", flush=True)


def run_demo(cfg: DemoConfig) -> None:
    out = Path(cfg.out)
    data = out / "synth"
    run_step(["synth", str(data), "--num-videos", str(cfg.num_videos), "--frames", str(cfg.frames),
              "--size", cfg.size, "--seed", str(cfg.seed)], data / "manifest.parquet")
    run_step(["preview", str(data), "--out", str(out / "preview")], out / "preview" / "spectrum.png")
    print(f"\nResults in {out}/:\n  synthetic videos  {data}/videos/\n  preview           {out}/preview/")
