"""gid.pipeline.motion_metrics on analytic sinusoids and synthetic motion: amplitude in px, its
error, the frequency hit rate and motion FD."""
from __future__ import annotations

import numpy as np
import pytest

from gid.pipeline.motion_metrics import (amplitude_error, amplitude_px, frequency_hit_rate, motion_descriptors,
                                         motion_fd, moving_mask)
from gid.pipeline.spectral import trajectories_to_spectral


def _sinusoids(num_frames: int, specs: list[tuple[int, float, float]]) -> np.ndarray:
    """``(T, 2, 1, P)`` trajectories: pixel i moves by ``a·cos(2πkt/T + φ)`` along a direction at angle θ."""
    t = np.arange(num_frames)[:, None]
    traj = np.zeros((num_frames, 2, 1, len(specs)))
    for i, (k, a, phase) in enumerate(specs):
        wave = a * np.cos(2 * np.pi * k * t[:, 0] / num_frames + phase)
        traj[:, 0, 0, i], traj[:, 1, 0, i] = wave * np.cos(0.3 * i), wave * np.sin(0.3 * i)
    return traj


@pytest.mark.parametrize("num_frames", [60, 150, 31])
def test_amplitude_px_reads_a_sinusoids_amplitude(num_frames):
    specs = [(1, 2.5, 0.7), (3, 0.8, -1.2), (7, 4.0, 2.9), (15, 1.25, 0.0)]
    traj = _sinusoids(num_frames, specs)
    traj[:, :, 0, 0] += [1.5, -2.0]  # a constant offset of (1.5, −2) px at pixel 0: bin 0 reads 2.5 px
    amp = amplitude_px(trajectories_to_spectral(traj, 16), num_frames)  # (K, 1, P)
    assert amp.shape == (16, 1, 4)
    expected = np.zeros((16, 4))
    for i, (k, a, _) in enumerate(specs):
        expected[k, i] = a
    expected[0, 0] = 2.5
    np.testing.assert_allclose(amp[:, 0], expected, atol=1e-9)


def test_amplitude_px_nyquist_bin_and_errors():
    t = np.arange(8)
    traj = np.zeros((8, 2, 1, 1))
    traj[:, 0, 0, 0] = 1.5 * np.cos(np.pi * t)  # k = T/2 = 4: ±1.5 px every other frame
    assert amplitude_px(trajectories_to_spectral(traj, 5), 8)[4, 0, 0] == pytest.approx(1.5)
    with pytest.raises(ValueError, match=r"\(\.\.\., K, 4, H, W\)"):
        amplitude_px(np.zeros((4, 2, 3, 3)), 8)


@pytest.fixture(scope="module")
def truth():
    from gid.datasets.synthetic import SynthConfig, generate_video

    return generate_video(11, 0, SynthConfig(num_frames=48, width=64, height=48))


def test_amplitude_error_zero_on_truth_phase_invariant_and_linear(truth):
    spec = truth.spectral.astype(np.float64)[None]
    amp = amplitude_px(spec, 48)
    assert np.allclose(amplitude_error(amp, amp), 0.0)
    # rotate the phase of every frequency (and of every pixel differently): amplitudes are unchanged
    phase = np.random.default_rng(6).uniform(0, 2 * np.pi, (1, 16, 1, *spec.shape[-2:]))
    cx = (spec[:, :, 0] + 1j * spec[:, :, 1])[:, :, None] * np.exp(1j * phase)
    cy = (spec[:, :, 2] + 1j * spec[:, :, 3])[:, :, None] * np.exp(1j * phase)
    rotated = np.concatenate([cx.real, cx.imag, cy.real, cy.imag], axis=2)
    assert np.allclose(amplitude_error(amplitude_px(rotated, 48), amp), 0.0, atol=1e-9)
    for eps in (0.1, 0.3, 1.0):  # |(1+ε)a − a| = ε·a, exactly
        np.testing.assert_allclose(amplitude_error(amplitude_px(spec * (1 + eps), 48), amp),
                                   eps * amp.mean(axis=(0, 2, 3)))


def test_amplitude_error_mask_and_moving_mask():
    spec = np.zeros((1, 2, 4, 2, 2))
    spec[0, 1, 0, 0, 0], spec[0, 1, 3, 0, 0] = 3.0, 4.0  # |S_1| = 5 at pixel (0, 0)
    amp = amplitude_px(spec, 10)  # 2/10 · 5 = 1 px
    assert amp[0, 1, 0, 0] == pytest.approx(1.0) and amp.sum() == pytest.approx(1.0)
    mask = moving_mask(amp)
    assert mask.tolist() == [[[True, False], [False, False]]]
    np.testing.assert_allclose(amplitude_error(np.zeros_like(amp), amp), [0.0, 0.25])
    np.testing.assert_allclose(amplitude_error(np.zeros_like(amp), amp, mask), [0.0, 1.0])
    with pytest.raises(ValueError, match="selects no pixel"):
        amplitude_error(amp, amp, np.zeros((1, 2, 2), bool))


def test_frequency_hit_rate_counts_peaks_within_one_bin():
    truth = np.zeros((1, 8, 1, 4))
    truth[0, [2, 3, 5, 7], 0, [0, 1, 2, 3]] = 1.0  # peaks at k = 2, 3, 5, 7
    pred = np.zeros_like(truth)
    pred[0, [3, 1, 5, 4], 0, [0, 1, 2, 3]] = 1.0  # off by 1, 2, 0, 3 bins
    pred[0, 0] = 9.0  # k = 0 is no oscillation and never counts as the peak
    mask = np.ones((1, 1, 4), bool)
    assert frequency_hit_rate(pred, truth, mask) == pytest.approx(0.5)
    assert frequency_hit_rate(pred, truth, mask, tolerance=0) == pytest.approx(0.25)
    assert frequency_hit_rate(truth, truth, mask) == 1.0
    assert frequency_hit_rate(np.zeros_like(truth), truth, mask) == 0.0  # no motion: no peak, no hit


def test_motion_fd_zero_on_truth_and_growing_with_error(truth):
    from gid.datasets.synthetic import SynthConfig, generate_video

    cfg = SynthConfig(num_frames=48, width=64, height=48)
    amp = amplitude_px(np.stack([generate_video(11, i, cfg).spectral for i in range(6)]), 48)
    mask = moving_mask(amp)
    desc = motion_descriptors(amp, mask)
    assert desc.shape == (6, 16)
    np.testing.assert_allclose(desc[0], np.log(0.01 + amp[0][:, mask[0]].mean(axis=1)))
    assert motion_fd(amp, amp, mask) == pytest.approx(0.0, abs=1e-9)
    # scaling every amplitude by s shifts the (moving, far above ε) descriptors by about log s
    fds = [motion_fd(amp * s, amp, mask) for s in (1.1, 2.0, 4.0)]
    assert np.all(np.diff(fds) > 0)
    shared = amp.mean(axis=0, keepdims=True)  # one spectrum for every image: no spread at all
    assert motion_fd(shared, amp, mask) > 0.1
