"""benchmarks/gpu.py's kernel checks, run here on CPU with the backends a CPU has: they pass for the
torch backend and catch a broken one."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from gpu import MODES, check_kernels  # noqa: E402


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
