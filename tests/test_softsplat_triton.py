"""Triton softsplat kernels, run on CPU by Triton's interpreter: forward against the brute-force
loop, backward against the reference's autograd gradients. Shapes are tiny (interpreter speed).

Triton reads TRITON_INTERPRET when it is imported, so without it this module runs itself again in
a fresh process with TRITON_INTERPRET=1 (one test); with it (e.g. `TRITON_INTERPRET=1 pytest`) the
kernel tests below run directly.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gid.kernels import softsplat, softsplat_reference
from gid.kernels.softsplat import default_backend
from test_softsplat_cases import MODES, awkward_inputs, brute_force

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


def test_default_backend_follows_device_and_interpreter_flag(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert default_backend(torch.device("cpu")) == "torch"
    assert default_backend(torch.device("cuda")) == "triton"
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert default_backend(torch.device("cpu")) == "triton"


if not INTERPRETED:

    def test_triton_on_cpu_without_interpreter_is_a_clear_error():
        x, flow = torch.rand(1, 2, 4, 4), torch.zeros(1, 2, 4, 4)
        with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
            softsplat(x, flow, mode="sum", backend="triton")

    def test_kernels_compile_for_hopper_without_a_gpu():
        """The compiled path (not the interpreter) must build: Triton lowers the soft-mode kernels to
        PTX and ptxas assembles them for sm_90 (H100/H200), which needs no GPU. Scatters must use
        relaxed atomics, the backward none."""
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource

        from gid.kernels import softsplat_triton as st

        common = {"n_pixels": "i32", "H": "i32", "W": "i32", "BLOCK_P": "constexpr"}
        tiled = {**common, "C": "i32", "MODE": "constexpr", "BLOCK_C": "constexpr"}
        blocks = {"MODE": st.MODE_IDS["soft"], "BLOCK_P": st.BLOCK_P, "BLOCK_C": st.BLOCK_C}
        cases = [  # kernel, pointer arguments, scalars, constexprs, whether it scatters with atomics
            (st._peak_kernel, ["flow_ptr", "metric_ptr", "peak_ptr"], common, {"BLOCK_P": st.BLOCK_P}, True),
            (st._splat_kernel.fn, ["x_ptr", "flow_ptr", "metric_ptr", "peak_ptr", "num_ptr", "den_ptr", "count_ptr"],
             tiled, blocks, True),
            (st._grad_kernel.fn, ["x_ptr", "flow_ptr", "metric_ptr", "peak_ptr", "count_ptr", "g_ptr", "s_ptr", "gx_ptr",
                               "gflow_ptr", "gmetric_ptr"], tiled, blocks, False),
        ]
        for kernel, pointers, scalars, constexprs, scatters in cases:
            signature = {**{name: "*fp32" for name in pointers}, **scalars}
            source = ASTSource(kernel, signature, constexprs=constexprs)
            compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32))
            global_atomics = re.findall(r"(?:atom|red)\.global[\w.]*", compiled.asm["ptx"])
            if scatters:  # fire-and-forget relaxed reductions, not acq_rel atomics that return a value
                assert global_atomics and all(".relaxed." in op for op in global_atomics), global_atomics
            else:  # the backward is a pure gather: deterministic
                assert not global_atomics, global_atomics
            assert len(compiled.asm["cubin"]) > 1000

    def test_block_sizes_are_autotuned_on_a_gpu(monkeypatch):
        """Nine (BLOCK_P, BLOCK_C) candidates for the compiled kernels, the accumulators zeroed between
        trials (a second trial would otherwise add to the first); one candidate under the interpreter."""
        from gid.kernels import softsplat_triton as st

        monkeypatch.setenv("TRITON_INTERPRET", "0")
        configs = st._block_configs()
        assert len({(c.kwargs["BLOCK_P"], c.kwargs["BLOCK_C"]) for c in configs}) == 9
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        assert [c.kwargs for c in st._block_configs()] == [{"BLOCK_P": st.BLOCK_P, "BLOCK_C": st.BLOCK_C}]
        assert len(st._splat_kernel.configs) == 9 and st._splat_kernel.reset_to_zero == ["num_ptr", "den_ptr",
                                                                                          "count_ptr"]

    def test_kernels_under_triton_interpreter():
        """Runs this file in a fresh process with TRITON_INTERPRET=1; its failures are shown here."""
        env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=300", Path(__file__).name],
            cwd=Path(__file__).parent, env=env, capture_output=True, text=True, timeout=400,
        )
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
        assert " passed" in done.stdout and "skipped" not in done.stdout


if INTERPRETED:

    def triton_splat(*args, **kwargs):
        return softsplat(*args, backend="triton", **kwargs)

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("shape", [(2, 1, 12, 13), (2, 64, 5, 6), (1, 20, 6, 5)])
    def test_forward_matches_brute_force(mode, shape):
        """C=1, C=64 (four channel blocks) and C=20 (a partial block); 312 pixels span three programs."""
        x, flow, metric = awkward_inputs(*shape, seed=MODES.index(mode) + 7 * shape[1])
        if mode == "linear":
            metric = metric.abs() + 0.1
        expected = brute_force(x.numpy(), flow.numpy(), metric.numpy(), mode)
        out = triton_splat(x, flow, metric, mode=mode)
        assert out.shape == x.shape and out.dtype == x.dtype
        torch.testing.assert_close(out.double(), torch.from_numpy(expected), rtol=1e-5, atol=1e-5)

    @pytest.mark.parametrize("mode", MODES)
    def test_backward_matches_reference_gradients(mode):
        x, flow, metric = awkward_inputs(2, 20, 6, 7, seed=30 + MODES.index(mode))
        if mode == "linear":
            metric = metric.abs() + 0.1
        grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
        used = 3 if mode in ("linear", "soft") else 2
        grads = {}
        runs = (("reference", softsplat_reference, torch.float64), ("triton", triton_splat, torch.float32))
        for name, fn, dtype in runs:
            leaves = [t.to(dtype).requires_grad_() for t in (x, flow, metric)]
            out = fn(*leaves, mode=mode)
            grads[name] = torch.autograd.grad(out, leaves[:used], grad_out.to(dtype))
        for ref, got in zip(grads["reference"], grads["triton"]):
            assert got.dtype == torch.float32
            torch.testing.assert_close(got.double(), ref, rtol=1e-4, atol=5e-5)

    def test_huge_metric_stays_finite_and_matches_reference():
        x, flow, metric = awkward_inputs(1, 3, 7, 6, seed=4)
        big = (metric * 5e3).requires_grad_()  # |Z| up to 1e4
        out = triton_splat(x, flow, big)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, softsplat_reference(x, flow, big.detach()), rtol=1e-5, atol=1e-5)
        (grad,) = torch.autograd.grad(out.sum(), big)
        assert torch.isfinite(grad).all()

    def test_soft_gradient_includes_the_max_term_at_nearly_empty_targets():
        """One source per target: the result cannot depend on Z, so ∂L/∂Z = 0 (0.25 without the ε·∂M term)."""
        x = torch.tensor([[[[1.0, 2.0, 3.0]]]])
        flow = torch.tensor([[[[1e-7, 1.0, 1.0]], [[0.0, 0.0, 0.0]]]])
        metric = torch.tensor([[[[0.3, 1.5, 0.7]]]], requires_grad=True)
        out = triton_splat(x, flow, metric)
        torch.testing.assert_close(out[0, 0, 0], torch.tensor([1.0, 0.5, 2.0]), rtol=1e-5, atol=1e-5)
        (grad,) = torch.autograd.grad(out.sum(), metric)
        torch.testing.assert_close(grad, torch.zeros_like(grad), rtol=0, atol=1e-3)

    def test_half_input_accumulates_in_float32():
        x, flow, metric = awkward_inputs(1, 4, 6, 6, seed=8)
        out = triton_splat(x.half(), flow.half(), metric.half())
        assert out.dtype == torch.float16
        expected = softsplat(x.half().float(), flow.half().float(), metric.half().float(), backend="torch")
        torch.testing.assert_close(out, expected.half(), rtol=1e-3, atol=1e-3)  # one float16 rounding

    def test_interpreted_kernels_are_the_default_on_cpu():
        from triton.runtime.interpreter import InterpretedFunction

        from gid.kernels import softsplat_triton

        assert isinstance(softsplat_triton._splat_kernel.fn, InterpretedFunction)
        assert len(softsplat_triton._splat_kernel.configs) == len(softsplat_triton._grad_kernel.configs) == 1
        x, flow, z = torch.rand(1, 3, 5, 6), torch.randn(1, 2, 5, 6) * 2, torch.randn(1, 1, 5, 6)
        torch.testing.assert_close(softsplat(x, flow, z), softsplat_reference(x, flow, z), rtol=1e-5, atol=1e-5)
