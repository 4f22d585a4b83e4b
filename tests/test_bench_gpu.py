"""benchmarks/gpu.py's kernel checks, run here on CPU with the backends a CPU has: they pass for the
torch backend and catch a broken one."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from gpu import MODES, bench_render, bench_training, check_kernels  # noqa: E402


def test_check_kernels_passes_the_torch_backend_in_every_mode_with_gradients():
    rows = check_kernels(torch.device("cpu"), ["torch"], shapes=((2, 3, 9, 11),))
    assert sorted(r["mode"] for r in rows) == sorted(MODES)
    assert all(r["ok"] and r["against"] == "reference" for r in rows), rows


def test_check_kernels_catches_a_wrong_gradient(monkeypatch):
    """Broken variant: the torch backend with its flow gradient zeroed (output still right): every mode fails."""
    from gid.kernels import softsplat_torch

    original = softsplat_torch.SoftsplatTorch.backward

    def no_flow_gradient(ctx, grad):
        grad_input, grad_flow, grad_metric, none = original(ctx, grad)
        return grad_input, torch.zeros_like(grad_flow), grad_metric, none

    monkeypatch.setattr(softsplat_torch.SoftsplatTorch, "backward", staticmethod(no_flow_gradient))
    rows = check_kernels(torch.device("cpu"), ["torch"], shapes=((2, 3, 9, 11),))
    assert not any(r["ok"] for r in rows)


def test_training_step_and_render_rows_run_on_cpu():
    """The same code the GPU run uses, at CPU size: a bf16-autocast U-Net step whose losses stay finite,
    and render frames/s for each batch size."""
    (train,) = bench_training(torch.device("cpu"), presets=("tiny",), steps=1, batch=1)
    assert train["finite"] and train["steps_per_s"] > 0 and train["peak_gb"] is None
    rows = bench_render(torch.device("cpu"), frames=2, presets=("tiny",), sizes=((32, 24),), batches=(1, 2))
    assert [(r["size"], r["batch"]) for r in rows] == [("32x24", 1), ("32x24", 2)]
    assert all(r["frames_per_s"] > 0 for r in rows)
