"""Softmax splatting speed: every available backend against the torch reference, in the same run.

    python benchmarks/softsplat.py [--sizes 256x160,512x288,1920x1080] [--channels 3,32,64]
                                   [--mode soft] [--batch 1] [--repeats 5] [--peak-gbs GB/s]

For each size × channel count × pass (forward; forward+backward) it prints the milliseconds of the
reference (:func:`gid.kernels.softsplat_reference`, plain torch ops + autograd) and of each
backend (CPU: process CPU time; CUDA: synchronised wall time), the ratio reference/backend
(> 1: faster than the reference) and the largest difference from the reference's output (and,
with backward, its three gradients) relative to that tensor's largest value. CPU runs the
vectorised ``torch`` backend; CUDA runs ``torch``, ``triton`` and, when CuPy is installed,
``cupy``, and also prints the achieved bandwidth in GB/s and as a percentage of the card's peak
memory bandwidth.

Bandwidth counts the bytes a pass must move at least (each tensor read or written once):
forward reads input, flow, metric and writes the output; backward reads the output gradient,
input, flow, metric and writes the three gradients. Atomics' read-modify-write traffic is not
counted, so the percentage is an effective (conservative) figure.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from gid.kernels import softsplat, softsplat_reference
from gid.stages.options import parse_size

# Peak memory bandwidth in GB/s by device-name fragment (vendor data sheets); first match wins.
PEAK_GBS = [
    ("H200", 4800), ("H100 SXM", 3350), ("H100 NVL", 3900), ("H100 PCIe", 2000), ("H100", 3350),
    ("GH200", 4000), ("B200", 8000), ("A100-SXM4-80GB", 2039), ("A100 80GB PCIe", 1935), ("A100", 1555),
    ("L40S", 864), ("L40", 864), ("L4", 300), ("A10G", 600), ("A10", 600), ("V100", 900), ("T4", 320),
    ("RTX 4090", 1008), ("RTX 3090", 936),
]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peak_bandwidth(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((gbs for fragment, gbs in PEAK_GBS if fragment in name), None)


def timed_ms(fn, repeats: int, device: torch.device) -> float:
    """Median time of ``fn`` in ms after one warm-up call.

    CUDA: wall time with the device synchronised around each call. CPU: process CPU time (all
    threads), which other jobs on a shared machine disturb far less than wall time.
    """
    cuda = device.type == "cuda"
    clock = time.perf_counter if cuda else time.process_time

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        sync()
        times.append(clock() - start)
    return 1000 * statistics.median(times)


def pass_bytes(shape, backward: bool, itemsize: int) -> int:
    batch, channels, height, width = shape
    pixels = batch * height * width
    forward = itemsize * pixels * (2 * channels + 3)  # input + output, flow (2) + metric (1)
    if not backward:
        return forward
    return forward + itemsize * pixels * (3 * channels + 6)  # grad_out, input, grad_input; flow, metric and their grads


def backends_for(device: torch.device) -> list[str]:
    if device.type != "cuda":
        return ["torch"]
    names = ["torch", "triton"]
    try:
        import cupy  # noqa: F401

        names.append("cupy")
    except ImportError:
        print("cupy: not installed, skipped (pip install 'gid[gpu]')")
    return names


def run_case(fn, inputs, grad_out, backward: bool) -> list[torch.Tensor]:
    """One forward (no graph) or one forward+backward of ``fn`` on fresh leaves.

    Returns ``[output]`` or ``[output, grad input, grad flow, grad metric]``.
    """
    if not backward:
        with torch.no_grad():
            return [fn(*inputs)]
    leaves = [t.detach().requires_grad_() for t in inputs]
    out = fn(*leaves)
    out.backward(grad_out)
    return [out.detach()] + [leaf.grad for leaf in leaves]


def max_difference(got: list[torch.Tensor], want: list[torch.Tensor]) -> float:
    """Largest ``max|got − want| / max|want|`` over the output and gradients (flow gradients reach
    1e4–1e6 at nearly empty targets, where ``1/(D + ε)`` is large, so absolute errors mislead)."""
    return max(((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-30)).item()
               for a, b in zip(got, want))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256x160,512x288,1920x1080", help="comma-separated WIDTHxHEIGHT")
    parser.add_argument("--channels", default="3,32,64", help="comma-separated channel counts C")
    parser.add_argument("--mode", default="soft", choices=["sum", "avg", "linear", "soft"], help="splatting mode")
    parser.add_argument("--batch", type=int, default=1, help="batch size B")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per case (median reported)")
    parser.add_argument("--passes", default="forward,forward+backward", help="which passes to time")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--peak-gbs", type=float, default=None, help="peak memory bandwidth, if the card is unknown")
    args = parser.parse_args()
    device = torch.device(args.device)
    peak = peak_bandwidth(device, args.peak_gbs)
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{cpu_name()}, {torch.get_num_threads()} torch threads"
    print(f"device: {where}; peak bandwidth: {f'{peak:.0f} GB/s' if peak else 'n/a'}; mode {args.mode}, "
          f"B={args.batch}, median of {args.repeats}; torch {torch.__version__}")
    backends = backends_for(device)
    header = f"{'size':>10s} {'C':>3s} {'pass':>16s} {'backend':>9s} {'ms':>9s} {'vs ref':>7s} {'rel. err':>10s}"
    if device.type == "cuda":
        header += f" {'GB/s':>7s} {'% peak':>7s}"
    print(header)
    gen = torch.Generator().manual_seed(0)
    for size in args.sizes.split(","):
        width, height = parse_size(size)
        for channels in (int(c) for c in args.channels.split(",")):
            shape = (args.batch, channels, height, width)
            x = torch.rand(shape, generator=gen).to(device)
            flow = (torch.randn(args.batch, 2, height, width, generator=gen) * 4).to(device)
            metric = torch.randn(args.batch, 1, height, width, generator=gen).to(device)
            grad_out = torch.randn(shape, generator=gen).to(device)
            for pass_name in args.passes.split(","):
                backward = pass_name == "forward+backward"
                reference = lambda *t: softsplat_reference(*t, mode=args.mode)  # noqa: E731
                expected = run_case(reference, (x, flow, metric), grad_out, backward)
                inputs = (x, flow, metric)
                ref_ms = timed_ms(lambda: run_case(reference, inputs, grad_out, backward), args.repeats, device)
                print(f"{size:>10s} {channels:3d} {pass_name:>16s} {'reference':>9s} {ref_ms:9.2f}")
                for name in backends:
                    fn = lambda *t, name=name: softsplat(*t, mode=args.mode, backend=name)  # noqa: E731
                    diff = max_difference(run_case(fn, (x, flow, metric), grad_out, backward), expected)
                    ms = timed_ms(lambda: run_case(fn, (x, flow, metric), grad_out, backward), args.repeats, device)
                    line = f"{'':>10s} {'':>3s} {'':>16s} {name:>9s} {ms:9.2f} {ref_ms / ms:6.2f}x {diff:10.2e}"
                    if device.type == "cuda":
                        gbs = pass_bytes(shape, backward, x.element_size()) / ms / 1e6
                        line += f" {gbs:7.0f} {f'{100 * gbs / peak:6.1f}%' if peak else 'n/a':>7s}"
                    print(line, flush=True)
            del x, flow, metric, grad_out


if __name__ == "__main__":
    main()
