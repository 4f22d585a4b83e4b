"""GPU readiness in one run (`make bench-gpu`): kernels checked, then timed, trained and rendered on CUDA.

    python benchmarks/gpu.py [--json results/bench_gpu.json] [--flow-net NET.pt] [--quick]

1. checks: Triton and (with CuPy) CuPy softsplat on CUDA tensors against the torch reference, all four
   modes, output and the three gradients, and CuPy against Triton; then the softsplat test files
   (tests/test_softsplat*.py: Triton kernels under the interpreter, CuPy's CUDA source on the host);
2. softsplat at 256x160 C=3 and 1920x1080 C=64 (forward, forward+backward): ms, ratio to the torch
   reference and to CuPy, GB/s and % of the card's peak bandwidth (benchmarks/softsplat.py's rules);
3. one bf16 (autocast) training step of the motion U-Net, tiny and paper presets: steps/s, peak memory;
4. rendering (`gid render`'s render stage, :func:`gid.pipeline.warping.render_video`) with the paper
   and tiny renderers at 256x160 and 752x600, batch 1 and 8: frames/s (paper: 25 frames/s on a V100);
5. with ``--flow-net``: `gid preprocess --flow torchscript:NET.pt --num-gpus 1` on synthetic videos.

Writes one JSON and prints a table. Without CUDA it says so in one line and exits 0. Budget: under
8 minutes on one H100 (the pytest step is CPU-bound, about 2 minutes of it).
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODES = ("sum", "avg", "linear", "soft")


def check_kernels(device: torch.device, backends: list[str], shapes=((2, 3, 33, 47), (1, 64, 40, 72)),
                  tolerance: float = 1e-4) -> list[dict]:
    """Every backend against the reference (and CuPy against Triton), per mode and shape.

    Returns rows ``{backend, against, mode, shape, error, ok}`` with ``error`` the largest
    ``max|a − b| / max|b|`` over the output and the gradients of input, flow and metric.
    """
    sys.path.insert(0, str(HERE))
    from softsplat import max_difference, run_case

    from gid.kernels import softsplat, softsplat_reference

    rows = []
    gen = torch.Generator().manual_seed(0)
    for shape in shapes:
        batch, _, height, width = shape
        x = torch.rand(shape, generator=gen).to(device)
        flow = (torch.randn(batch, 2, height, width, generator=gen) * 3).to(device)
        metric = torch.randn(batch, 1, height, width, generator=gen).to(device)
        grad = torch.randn(shape, generator=gen).to(device)
        for mode in MODES:
            results = {"reference": run_case(lambda *t: softsplat_reference(*t, mode=mode), (x, flow, metric), grad, True)}
            for name in backends:
                results[name] = run_case(lambda *t, n=name: softsplat(*t, mode=mode, backend=n), (x, flow, metric),
                                         grad, True)
            pairs = [(name, "reference") for name in backends]
            if "cupy" in backends and "triton" in backends:
                pairs.append(("cupy", "triton"))
            for name, against in pairs:
                got, want = results[name], results[against]
                if mode in ("sum", "avg"):  # no metric gradient in these modes
                    got, want = got[:3], want[:3]
                error = max_difference(got, want)
                rows.append({"backend": name, "against": against, "mode": mode, "shape": list(shape),
                             "error": error, "ok": error <= tolerance})
    return rows


def run_tests() -> dict:
    """The softsplat test files in a fresh process: ``{passed, failed, seconds}``."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_softsplat.py",
                           "tests/test_softsplat_cases.py", "tests/test_softsplat_triton.py",
                           "tests/test_softsplat_cupy.py"], cwd=ROOT, capture_output=True, text=True)
    last = (done.stdout.strip().splitlines() or [""])[-1]
    count = lambda word: int(next((w for w, n in zip(last.split(), last.split()[1:]) if n.startswith(word)), 0))  # noqa: E731
    return {"passed": count("passed"), "failed": count("failed") + count("error"), "returncode": done.returncode,
            "summary": last, "seconds": time.perf_counter() - start}


def bench_softsplat(device: torch.device, backends: list[str], repeats: int) -> list[dict]:
    sys.path.insert(0, str(HERE))
    from softsplat import pass_bytes, peak_bandwidth, run_case, timed_ms

    from gid.kernels import softsplat, softsplat_reference

    peak = peak_bandwidth(device, None)
    rows = []
    gen = torch.Generator().manual_seed(0)
    for width, height, channels in ((256, 160, 3), (1920, 1080, 64)):
        shape = (1, channels, height, width)
        x = torch.rand(shape, generator=gen).to(device)
        flow = (torch.randn(1, 2, height, width, generator=gen) * 4).to(device)
        metric = torch.randn(1, 1, height, width, generator=gen).to(device)
        grad = torch.randn(shape, generator=gen).to(device)
        for backward in (False, True):
            ms = {"reference": timed_ms(lambda: run_case(lambda *t: softsplat_reference(*t, mode="soft"),
                                                         (x, flow, metric), grad, backward), repeats, device)}
            for name in backends:
                ms[name] = timed_ms(lambda n=name: run_case(lambda *t: softsplat(*t, mode="soft", backend=n),
                                                            (x, flow, metric), grad, backward), repeats, device)
            for name in backends:
                gbs = pass_bytes(shape, backward, x.element_size()) / ms[name] / 1e6
                rows.append({"size": f"{width}x{height}", "C": channels,
                             "pass": "forward+backward" if backward else "forward", "backend": name, "ms": ms[name],
                             "vs_reference": ms["reference"] / ms[name],
                             "vs_cupy": ms["cupy"] / ms[name] if "cupy" in ms else None,
                             "gb_s": gbs, "pct_peak": 100 * gbs / peak if peak else None})
        del x, flow, metric, grad
    return rows


def bench_training(device: torch.device, presets=("tiny", "paper"), steps: int = 10, batch: int = 2) -> list[dict]:
    """AdamW steps of the motion U-Net under bf16 autocast, as `gid train motion` runs them on a GPU.

    ``batch`` whole volumes of 16 frequency slices each; peak memory only on CUDA."""
    import torch.nn.functional as F

    from gid.pipeline.motion_presets import get_preset
    from gid.pipeline.unet import MotionUNet
    from gid.pipeline.vae import SpectralVAE

    cuda = device.type == "cuda"
    rows = []
    for name in presets:
        spec = get_preset(name)
        width, height = spec.size
        factor = SpectralVAE(**spec.vae).latent_factor
        unet = MotionUNet(sample_size=(height // factor, width // factor), latent_factor=factor, num_freqs=16,
                          **{k: v for k, v in spec.unet.items() if k != "freq_attention_heads"}).to(device)
        opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
        n = batch * 16
        latent = torch.randn(n, unet.config.latent_channels, height // factor, width // factor, device=device)
        image = torch.rand(n, 3, height, width, device=device) * 2 - 1
        freq = torch.arange(16, device=device).repeat(batch)

        def step():
            noise = torch.randn_like(latent)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                pred = unet(latent + noise, torch.randint(0, 1000, (n,), device=device), freq, image)
            loss = F.mse_loss(pred.float(), noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss

        step()
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        losses = [float(step()) for _ in range(steps)]
        rows.append({"preset": name, "batch": f"{batch} volumes ({n} slices)",
                     "steps_per_s": steps / (time.perf_counter() - start), "finite": all(map(math.isfinite, losses)),
                     "peak_gb": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None})
        del unet, opt
    return rows


def bench_render(device: torch.device, frames: int = 48, presets=("paper", "tiny"),
                 sizes=((256, 160), (752, 600)), batches=(1, 8)) -> list[dict]:
    """Frames/s of :func:`gid.pipeline.warping.render_video` (the render stage of `gid render`) per renderer,
    size and batch, on random frames and motion."""
    import numpy as np

    from gid.pipeline.warping import render_video
    from gid.pipeline.frame_renderer import FrameRenderer

    rows = []
    rng = np.random.default_rng(0)
    for preset in presets:
        renderer = FrameRenderer.from_preset(preset).to(device)
        for width, height in sizes:
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            traj = (rng.standard_normal((frames, 2, height, width)) * 2).astype(np.float32)
            for batch in batches:
                render_video(image, traj[:batch], renderer, batch_size=batch)  # warm-up (and autotuning)
                start = time.perf_counter()
                video = render_video(image, traj, renderer, batch_size=batch)  # returns on the host: synchronised
                rows.append({"renderer": preset, "size": f"{width}x{height}", "batch": batch,
                             "frames_per_s": len(video) / (time.perf_counter() - start)})
    return rows


def bench_preprocess(flow_net: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "gid.stages.cli", "synth", "--out", f"{tmp}/videos", "--num-videos", "2"],
                       check=True, capture_output=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "gid.stages.cli", "preprocess", f"{tmp}/videos", "--out",
                               f"{tmp}/clips", "--flow", f"torchscript:{flow_net}", "--num-gpus", "1", "--quiet"],
                              capture_output=True, text=True)
        return {"flow_net": str(flow_net), "seconds": time.perf_counter() - start, "returncode": done.returncode,
                "output": (done.stdout + done.stderr)[-500:]}


def print_table(result: dict) -> None:
    print(f"device: {result['device']}")
    bad = [r for r in result["checks"] if not r["ok"]]
    print(f"kernel checks: {len(result['checks']) - len(bad)}/{len(result['checks'])} within 1e-4 of their reference"
          + "".join(f"\n  FAIL {r['backend']} vs {r['against']} {r['mode']} {r['shape']}: {r['error']:.2e}" for r in bad))
    tests = result.get("tests")
    if tests:
        print(f"softsplat tests: {tests['summary']} ({tests['seconds']:.0f} s)")
    print(f"{'size':>10} {'C':>3} {'pass':>16} {'backend':>8} {'ms':>9} {'vs ref':>7} {'vs cupy':>8} {'GB/s':>7} {'% peak':>7}")
    for r in result["softsplat"]:
        cupy = f"{r['vs_cupy']:.2f}x" if r["vs_cupy"] else "n/a"
        pct = f"{r['pct_peak']:.1f}%" if r["pct_peak"] else "n/a"
        print(f"{r['size']:>10} {r['C']:3d} {r['pass']:>16} {r['backend']:>8} {r['ms']:9.3f} {r['vs_reference']:6.1f}x "
              f"{cupy:>8} {r['gb_s']:7.0f} {pct:>7}")
    for r in result["training"]:
        print(f"bf16 training step, {r['preset']:>5} U-Net, {r['batch']}: {r['steps_per_s']:.2f} steps/s, "
              f"peak {r['peak_gb']:.2f} GB, losses finite: {r['finite']}")
    for r in result["render"]:
        print(f"render, {r['renderer']:>5} renderer, {r['size']:>8}, batch {r['batch']}: {r['frames_per_s']:.1f} frames/s")
    if result.get("preprocess"):
        p = result["preprocess"]
        print(f"gid preprocess with {p['flow_net']}: {p['seconds']:.1f} s, exit {p['returncode']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "bench_gpu.json", help="where the JSON goes")
    parser.add_argument("--flow-net", type=Path, default=None, help="a TorchScript flow net for `gid preprocess`")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per softsplat case (median)")
    parser.add_argument("--skip-tests", action="store_true", help="leave out the pytest step")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench-gpu: no CUDA device (torch.cuda.is_available() is False); nothing to run")
        return 0
    device = torch.device("cuda")
    backends = ["torch", "triton"]
    try:
        import cupy  # noqa: F401

        backends.append("cupy")
    except ImportError:
        print("cupy: not installed (pip install 'gid[gpu]'); its columns stay empty", flush=True)
    result = {"device": torch.cuda.get_device_name(device), "torch": torch.__version__, "backends": backends}
    result["checks"] = check_kernels(device, [b for b in backends if b != "torch"] + ["torch"])
    result["tests"] = None if args.skip_tests else run_tests()
    result["softsplat"] = bench_softsplat(device, backends, args.repeats)
    result["training"] = bench_training(device)
    result["render"] = bench_render(device)
    result["preprocess"] = bench_preprocess(args.flow_net) if args.flow_net else None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print_table(result)
    print(f"wrote {args.json}")
    failed = any(not r["ok"] for r in result["checks"]) or (result["tests"] and result["tests"]["failed"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
