"""Softmax splatting: reference and vectorised CPU path against a brute-force loop and analytic motion."""
from __future__ import annotations

import pytest
import torch

from gid.kernels import softsplat, softsplat_reference
from test_softsplat_cases import MODES, awkward_inputs, brute_force, smooth_inputs

IMPLEMENTATIONS = {"reference": softsplat_reference, "torch": lambda *a, **k: softsplat(*a, backend="torch", **k)}


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(2, 1, 7, 9), (2, 64, 5, 6)])
def test_matches_brute_force(impl, mode, shape):
    x, flow, metric = awkward_inputs(*shape, seed=MODES.index(mode) + shape[1])
    if mode == "linear":  # a Z of mixed sign can cancel in Σ b·Z and make the result ill-conditioned
        metric = metric.abs() + 0.1
    expected = brute_force(x.numpy(), flow.numpy(), metric.numpy(), mode)
    out = IMPLEMENTATIONS[impl](x, flow, metric, mode=mode)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), torch.from_numpy(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["avg", "linear", "soft"])
def test_integer_translation_moves_the_image(mode):
    """A constant integer flow (dx, dy) is an exact shift; uncovered pixels are 0."""
    x = torch.rand(2, 3, 8, 10)
    flow = torch.zeros(2, 2, 8, 10)
    flow[:, 0], flow[:, 1] = 2.0, -1.0
    metric = torch.rand(2, 1, 8, 10) + 0.5
    for impl in IMPLEMENTATIONS.values():
        out = impl(x, flow, metric, mode=mode)
        torch.testing.assert_close(out[:, :, :7, 2:], x[:, :, 1:, :8], rtol=1e-6, atol=1e-6)
        assert (out[:, :, 7] == 0).all() and (out[:, :, :, :2] == 0).all()


def test_sum_mode_conserves_mass():
    """Bilinear weights sum to 1, so `sum` keeps the total of every source whose corners stay inside."""
    x = torch.rand(1, 2, 12, 12, dtype=torch.float64)
    flow = (torch.rand(1, 2, 12, 12, dtype=torch.float64) - 0.5) * 2
    x[..., :2, :] = x[..., -2:, :] = x[..., :, :2] = x[..., :, -2:] = 0  # border sources could leave
    for impl in IMPLEMENTATIONS.values():
        out = impl(x, flow, mode="sum")
        torch.testing.assert_close(out.sum(dim=(2, 3)), x.sum(dim=(2, 3)), rtol=1e-12, atol=1e-12)


def test_soft_equals_unshifted_formula_for_moderate_metric():
    """With |Z| ≤ 1 the max subtraction changes nothing but the (negligible) ε term."""
    x, flow, _ = smooth_inputs(1, 3, 6, 6, seed=3)
    metric = torch.rand(1, 1, 6, 6, dtype=torch.float64) * 2 - 1
    unshifted = softsplat_reference(x * 0 + 1, flow, metric, mode="sum")  # Σ b, for the mask below
    num = softsplat_reference(x * metric.exp(), flow, mode="sum")
    den = softsplat_reference(metric.exp(), flow, mode="sum")
    covered = unshifted[:, :1] > 0.05
    literal = num / (den + 1e-7)
    for impl in IMPLEMENTATIONS.values():
        out = impl(x, flow, metric, mode="soft")
        torch.testing.assert_close(out.masked_select(covered), literal.masked_select(covered), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
def test_soft_mode_is_finite_and_shift_invariant_for_huge_metric(impl):
    x, flow, metric = awkward_inputs(2, 4, 8, 8, seed=11)
    fn = IMPLEMENTATIONS[impl]
    big = metric * 5e3  # |Z| up to 1e4: exp(Z) alone would overflow float32 (and float64)
    out = fn(x, flow, big, mode="soft")
    assert torch.isfinite(out).all()
    torch.testing.assert_close(fn(x, flow, big + 1e4, mode="soft"), out, rtol=1e-5, atol=1e-5)
    # Z this large is a z-buffer: each covered target takes the value of its frontmost source.
    expected = brute_force(x.double().numpy(), flow.double().numpy(), big.double().numpy(), "soft")
    torch.testing.assert_close(out.double(), torch.from_numpy(expected), rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(fn(x.requires_grad_(), flow.requires_grad_(), big.requires_grad_(), mode="soft").sum(),
                                (x, flow, big))
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("mode", MODES)
def test_reference_gradcheck(mode):
    x, flow, metric = smooth_inputs(2, 2, 4, 5, seed=5)
    inputs = (x.requires_grad_(), flow.requires_grad_(), metric.requires_grad_())
    assert torch.autograd.gradcheck(lambda a, f, m: softsplat_reference(a, f, m, mode=mode), inputs)


@pytest.mark.parametrize("mode", MODES)
def test_torch_backward_gradcheck(mode):
    """The hand-written backward is the exact derivative."""
    x, flow, metric = smooth_inputs(2, 2, 4, 5, seed=6)
    inputs = (x.requires_grad_(), flow.requires_grad_(), metric.requires_grad_())
    fn = IMPLEMENTATIONS["torch"]
    assert torch.autograd.gradcheck(lambda a, f, m: fn(a, f, m, mode=mode), inputs, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_torch_gradients_match_reference_on_awkward_input(mode):
    """Collisions, integer landings, off-frame and NaN flow: the backward agrees with autograd."""
    x, flow, metric = awkward_inputs(2, 3, 6, 7, seed=21, dtype=torch.float64)
    grad_out = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    grads = {}
    for name, fn in IMPLEMENTATIONS.items():
        leaves = [t.clone().requires_grad_() for t in (x, flow, metric)]
        out = fn(*leaves, mode=mode)
        used = leaves if mode in ("linear", "soft") else leaves[:2]
        grads[name] = torch.autograd.grad(out, used, grad_out)
    for ref, got in zip(grads["reference"], grads["torch"]):
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-9)


def test_soft_gradient_includes_the_max_term_at_nearly_empty_targets():
    """Every target here is fed by one source, so out = x·D/(D + ε) with D = b·exp(Z − M) = b: the
    result does not depend on Z and ∂L/∂Z = 0 exactly. Target 1 gets only 1e-7 of pixel 0 (D = ε),
    where dropping the ε·∂M term would give ∂L/∂Z = 0.25 instead."""
    x = torch.tensor([[[[1.0, 2.0, 3.0]]]], dtype=torch.float64)
    flow = torch.tensor([[[[1e-7, 1.0, 1.0]], [[0.0, 0.0, 0.0]]]], dtype=torch.float64)
    metric = torch.tensor([[[[0.3, 1.5, 0.7]]]], dtype=torch.float64)
    for fn in IMPLEMENTATIONS.values():
        leaf = metric.clone().requires_grad_()
        out = fn(x, flow, leaf, mode="soft")
        torch.testing.assert_close(out[0, 0, 0], torch.tensor([1.0 / (1 + 1e-7), 0.5, 2.0], dtype=torch.float64))
        (grad,) = torch.autograd.grad(out.sum(), leaf)
        torch.testing.assert_close(grad, torch.zeros_like(grad), rtol=0, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_accumulates_in_float32(dtype):
    x, flow, metric = awkward_inputs(1, 8, 9, 9, seed=2)
    exact = softsplat(x, flow, metric)
    out = softsplat(x.to(dtype), flow.to(dtype), metric.to(dtype))
    assert out.dtype == dtype
    # Only the rounding of the inputs and of the result differs from float32.
    again = softsplat(x.to(dtype).float(), flow.to(dtype).float(), metric.to(dtype).float())
    torch.testing.assert_close(out.float(), again.to(dtype).float(), rtol=0, atol=0)
    assert (out.float() - exact).abs().max() < 0.1


@pytest.mark.parametrize(
    "args, kwargs, name",
    [
        ((torch.rand(1, 3, 4, 5), torch.rand(1, 2, 4, 6)), {"mode": "sum"}, "flow"),
        ((torch.rand(1, 3, 4, 5), torch.rand(2, 2, 4, 5)), {"mode": "sum"}, "flow"),
        ((torch.rand(3, 4, 5), torch.rand(1, 2, 4, 5)), {"mode": "sum"}, "input"),
        ((torch.rand(1, 3, 4, 5).int(), torch.rand(1, 2, 4, 5)), {"mode": "sum"}, "input"),
        ((torch.rand(1, 3, 4, 5), torch.rand(1, 2, 4, 5).long()), {"mode": "sum"}, "flow"),
        ((torch.rand(1, 3, 4, 5), torch.rand(1, 2, 4, 5)), {"mode": "soft"}, "metric"),
        ((torch.rand(1, 3, 4, 5), torch.rand(1, 2, 4, 5)), {"mode": "linear"}, "metric"),
        ((torch.rand(1, 3, 4, 5), torch.rand(1, 2, 4, 5), torch.rand(1, 3, 4, 5)), {"mode": "soft"}, "metric"),
        ((torch.rand(1, 3, 4, 5), torch.rand(1, 2, 4, 5), torch.rand(1, 1, 4, 5).bool()), {"mode": "soft"}, "metric"),
        ((torch.rand(1, 3, 4, 5), torch.rand(1, 2, 4, 5)), {"mode": "max"}, "mode"),
        ((torch.rand(1, 3, 4, 5), torch.rand(1, 2, 4, 5)), {"mode": "sum", "backend": "opencl"}, "backend"),
        ((torch.rand(1, 0, 4, 5), torch.rand(1, 2, 4, 5)), {"mode": "sum"}, "input"),
        (([[1.0]], torch.rand(1, 2, 4, 5)), {"mode": "sum"}, "input"),
    ],
)
def test_bad_input_names_the_argument(args, kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        softsplat(*args, **kwargs)
    if "backend" not in kwargs:
        with pytest.raises(ValueError, match=rf"\b{name}\b"):
            softsplat_reference(*args, **kwargs)
