"""`gid animate`'s stages and `gid render` through Ray Data, per size and preset, in one run.

    python benchmarks/animate.py [--sizes 256x160,752x600] [--presets tiny] [--frames 30] [--steps 25]
                                 [--ray-batches 1,4,8] [--ray-photos 8] [--json results/animate.json]
    # the issue's full table (long on 2 cores):
    python benchmarks/animate.py --sizes 256x160,752x600,1920x1080 --presets tiny,paper --frames 150

Each size × preset runs in a fresh process (so peak RSS and page faults are its own) with a random
bundle of that preset (:func:`gid.pipeline.motion_pipeline.write_random_bundle`; the cost of an
untrained model is the trained one's) and a random ``FrameRenderer`` of the same preset with a
non-zero correction. Columns: sampling s (DDIM on all torch threads, as `gid animate` runs it), render
frames/s per renderer (splat, learned) and learned/splat (the reference measured in the same
process), encode s (H.264), peak RSS and minor/major page faults of the whole process. Then
`gid render` (:func:`gid.stages.bulk_render.render_bulk`, one CPU actor) on ``--ray-photos`` photos at the
first size with batch 1/4/8: frames/s end to end (Ray start excluded). Prints a calibration line first.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _photo(height: int, width: int):
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    return cv2.resize(rng.integers(0, 256, (height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8), (width, height),
                      interpolation=cv2.INTER_CUBIC)


def run_row(size: str, preset: str, frames: int, steps: int) -> dict:
    """One size × preset, in this process: the stages of `gid animate` timed one by one."""
    import torch

    from gid.datasets.video_io import write_video
    from gid.pipeline import GIDPipeline
    from gid.pipeline.animate import spectral_to_motion
    from gid.pipeline.frame_renderer import FrameRenderer
    from gid.pipeline.warping import render_video
    from gid.stages.options import parse_size
    from gid.testing.bundles import write_random_bundle

    width, height = parse_size(size)
    photo = _photo(height, width)
    row = {"size": size, "preset": preset, "frames": frames, "steps": steps, "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        pipe = GIDPipeline.from_pretrained(write_random_bundle(Path(tmp) / "bundle", frames, preset=preset))
        start = time.perf_counter()
        volume = pipe(photo, num_frames=frames, num_inference_steps=steps, progress=False, batch_size=1)[0].float().numpy()
        row["sample_s"] = time.perf_counter() - start
        trajectories = spectral_to_motion(volume, photo.shape[:2], frames)
        torch.manual_seed(0)
        renderer = FrameRenderer.from_preset(preset)
        torch.nn.init.normal_(renderer.head.weight, std=0.01)
        for name, model in (("splat", None), ("learned", renderer)):
            start = time.perf_counter()
            video = render_video(photo, trajectories, model)
            row[f"{name}_fps"] = frames / (time.perf_counter() - start)
        start = time.perf_counter()
        write_video(Path(tmp) / "v.mp4", video, 30)
        row["encode_s"] = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    row.update(peak_rss_gb=usage.ru_maxrss / 2**20, minor_faults=usage.ru_minflt, major_faults=usage.ru_majflt,
               learned_over_splat=row["splat_fps"] / row["learned_fps"])
    return row


def run_ray(size: str, photos: int, batches: list[int], frames: int, steps: int) -> list[dict]:
    """`gid render` end to end on ``photos`` photos, once per batch size (one CPU actor)."""
    from PIL import Image

    from gid.testing.bundles import write_random_bundle
    from gid.stages.options import parse_size
    from gid.stages.bulk_render import RenderConfig, render_bulk

    width, height = parse_size(size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bundle = write_random_bundle(tmp / "bundle", frames)
        (tmp / "photos").mkdir()
        for i in range(photos):
            Image.fromarray(_photo(height, width)[:, ::-1] if i % 2 else _photo(height, width)).save(
                tmp / "photos" / f"p{i}.png")
        for batch in batches:
            cfg = RenderConfig(model=bundle, out=tmp / f"out{batch}", frames=frames, num_inference_steps=steps,
                               batch_size=batch, max_side=max(width, height), renderer="splat", progress=False,
                               tracking_uri=f"sqlite:///{tmp}/mlflow.db")
            summary = render_bulk([tmp / "photos"], cfg)
            rows.append({"batch": batch, "photos": photos, "size": size, "rendered": summary.rendered,
                         "seconds": summary.seconds, "frames_per_s": summary.frames_per_s})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256x160,752x600", help="WIDTHxHEIGHT list (issue: add 1920x1080)")
    parser.add_argument("--presets", default="tiny", help="motion-model and renderer presets (tiny,paper)")
    parser.add_argument("--frames", type=int, default=30, help="frames T per video (gid animate: 150)")
    parser.add_argument("--steps", type=int, default=25, help="DDIM steps (gid animate default: 25, gid.pipeline.sampling)")
    parser.add_argument("--ray-batches", default="1,4,8", help="gid render batch sizes; empty to skip")
    parser.add_argument("--ray-photos", type=int, default=8, help="photos per gid render run")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--row", nargs=2, metavar=("SIZE", "PRESET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        print(json.dumps(run_row(*args.row, args.frames, args.steps)))
        return

    sys.path.insert(0, str(HERE))
    from calibration import calibration_line

    print(calibration_line(), flush=True)
    rows = []
    header = (f"{'size':>10} {'preset':>6} {'sample s':>9} {'splat f/s':>10} {'learned f/s':>12} {'ratio':>6} "
              f"{'encode s':>9} {'peak GB':>8} {'minflt':>10} {'majflt':>7}")
    print(f"gid animate stages, {args.frames} frames, {args.steps} DDIM steps; ratio = learned/splat render time")
    print(header, flush=True)
    for size in args.sizes.split(","):
        for preset in args.presets.split(","):
            out = subprocess.run([sys.executable, __file__, "--row", size, preset, "--frames", str(args.frames),
                                  "--steps", str(args.steps)], capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"{size} {preset} failed:\n{out.stderr[-3000:]}")
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{size:>10} {preset:>6} {row['sample_s']:9.2f} {row['splat_fps']:10.2f} {row['learned_fps']:12.2f} "
                  f"{row['learned_over_splat']:6.2f} {row['encode_s']:9.2f} {row['peak_rss_gb']:8.2f} "
                  f"{row['minor_faults']:10d} {row['major_faults']:7d}", flush=True)
    ray_rows = []
    if args.ray_batches:
        size = args.sizes.split(",")[0]
        batches = [int(b) for b in args.ray_batches.split(",")]
        ray_rows = run_ray(size, args.ray_photos, batches, args.frames, args.steps)
        print(f"gid render (Ray Data, 1 CPU actor, splat, tiny bundle), {args.ray_photos} photos at {size}, "
              f"{args.frames} frames, {args.steps} DDIM steps")
        for row in ray_rows:
            print(f"  batch {row['batch']}: {row['seconds']:.1f} s, {row['frames_per_s']:.1f} frames/s "
                  f"({row['frames_per_s'] / ray_rows[0]['frames_per_s']:.2f}x batch {ray_rows[0]['batch']})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"animate": rows, "render": ray_rows}, indent=1))


if __name__ == "__main__":
    main()
