"""Spectral volumes against numpy's FFT and analytic sinusoids (METHOD.md, Notation)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from gid.pipeline.spectral import frequencies_hz, scale_motion, spectral_to_trajectories, trajectories_to_spectral


def sinusoid_trajectories(rng, T, K, H=5, W=6, lead=()):
    """Trajectories made of sinusoids on bins < K (exactly representable), F_0 arbitrary."""
    t = np.arange(T)
    out = np.zeros((*lead, T, 2, H, W))
    for k in range(K):
        amp = rng.normal(size=(*lead, 1, 2, H, W))
        phase = rng.uniform(0, 2 * np.pi, size=(*lead, 1, 2, H, W))
        out += amp * np.cos(2 * np.pi * k * t[:, None, None, None] / T + phase)
    return out


def test_matches_numpy_rfft():
    rng = np.random.default_rng(0)
    traj = rng.normal(size=(150, 2, 8, 9)).astype(np.float32)
    spec = trajectories_to_spectral(traj, 16)
    ref = np.fft.rfft(traj.astype(np.float64), axis=0)[:16]
    assert spec.shape == (16, 4, 8, 9) and spec.dtype == np.float32
    np.testing.assert_allclose(spec[:, 0], ref[:, 0].real, atol=2e-4)
    np.testing.assert_allclose(spec[:, 1], ref[:, 0].imag, atol=2e-4)
    np.testing.assert_allclose(spec[:, 2], ref[:, 1].real, atol=2e-4)
    np.testing.assert_allclose(spec[:, 3], ref[:, 1].imag, atol=2e-4)


def test_inverse_matches_numpy_irfft():
    rng = np.random.default_rng(1)
    spec = rng.normal(size=(16, 4, 3, 4))
    full = np.zeros((150 // 2 + 1, 2, 3, 4), complex)
    full[:16, 0] = spec[:, 0] + 1j * spec[:, 1]
    full[:16, 1] = spec[:, 2] + 1j * spec[:, 3]
    np.testing.assert_allclose(spectral_to_trajectories(spec, 150), np.fft.irfft(full, n=150, axis=0), atol=1e-12)


@pytest.mark.parametrize("T,K", [(150, 16), (48, 16), (30, 16), (8, 5)])
def test_round_trip_exact_for_bins_below_k(T, K):
    rng = np.random.default_rng(T)
    traj = sinusoid_trajectories(rng, T, K, lead=(3,))
    back = spectral_to_trajectories(trajectories_to_spectral(traj, K), T)
    np.testing.assert_allclose(back, traj, atol=1e-9)


def test_energy_above_k_is_dropped():
    T, K = 64, 4
    t = np.arange(T)[:, None, None, None]
    low = 2.0 * np.cos(2 * np.pi * 2 * t / T) * np.ones((T, 2, 1, 1))
    high = 0.5 * np.sin(2 * np.pi * 9 * t / T) * np.ones((T, 2, 1, 1))
    back = spectral_to_trajectories(trajectories_to_spectral(low + high, K), T)
    np.testing.assert_allclose(back, low, atol=1e-9)


def test_torch_batched_same_device_and_differentiable():
    rng = np.random.default_rng(2)
    traj = torch.tensor(sinusoid_trajectories(rng, 40, 8, lead=(2, 3)), dtype=torch.float32)
    spec = trajectories_to_spectral(traj, 8)
    assert isinstance(spec, torch.Tensor) and spec.shape == (2, 3, 8, 4, 5, 6) and spec.dtype == torch.float32
    np.testing.assert_allclose(spec.numpy(), trajectories_to_spectral(traj.numpy(), 8), rtol=1e-5, atol=1e-4)
    s = spec.double().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: spectral_to_trajectories(x, 40), (s[0, 0, :, :, :2, :2].detach().requires_grad_(),))
    back = spectral_to_trajectories(s, 40)
    back.sum().backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()


@settings(max_examples=25, deadline=None)
@given(T=st.integers(2, 64), data=st.data())
def test_round_trip_property(T, data):
    K = data.draw(st.integers(1, T // 2 + 1))
    rng = np.random.default_rng(T * 100 + K)
    traj = sinusoid_trajectories(rng, T, K, H=2, W=2)
    np.testing.assert_allclose(spectral_to_trajectories(trajectories_to_spectral(traj, K), T), traj, atol=1e-8)


def test_frequencies_match_rfftfreq():
    np.testing.assert_allclose(frequencies_hz(16, 150, 30), np.fft.rfftfreq(150, 1 / 30)[:16])
    assert frequencies_hz(16, 150, 30)[1] == pytest.approx(0.2)


def test_scale_motion_scalar_and_per_band():
    spec = np.ones((4, 4, 2, 2), np.float32)
    assert np.all(scale_motion(spec, 2.0) == 2.0)
    scaled = scale_motion(torch.ones(4, 4, 2, 2), [0.0, 1.0, 2.0, 3.0])
    assert scaled[:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="alpha"):
        scale_motion(spec, [1.0, 2.0])


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="traj"):
        trajectories_to_spectral(np.zeros((10, 3, 4, 4)))
    with pytest.raises(ValueError, match="num_freqs"):
        trajectories_to_spectral(np.zeros((10, 2, 4, 4)), 7)
    with pytest.raises(ValueError, match="spec"):
        spectral_to_trajectories(np.zeros((4, 2, 4, 4)), 10)
