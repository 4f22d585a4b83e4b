"""The splat baseline of gid.pipeline.warping against analytic motion and exact synthetic ground truth."""
import math

import numpy as np
import pytest
import torch

from gid.datasets.synthetic import SynthConfig, generate_video
from gid.pipeline.warping import (
    fill_holes, motion_metric, render_video, resize_flow, resize_spectral, splat_frames, splat_metric,
)
from gid.pipeline.spectral import spectral_to_trajectories


def _texture(h=40, w=56, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _psnr(a, b, mask=None):
    d = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    d = d if mask is None else d[mask]
    return 10 * math.log10(255**2 / max(d.mean(), 1e-10))


def test_resize_flow_rescales_displacements():
    flow = torch.zeros(1, 2, 48, 64)
    flow[:, 0], flow[:, 1] = 3.0, -2.0
    out = resize_flow(flow, (24, 16))
    assert out.shape == (1, 2, 24, 16)
    torch.testing.assert_close(out[:, 0], torch.full((1, 24, 16), 0.75))
    torch.testing.assert_close(out[:, 1], torch.full((1, 24, 16), -1.0))


def test_resize_spectral_equals_resizing_every_trajectory():
    rng = np.random.default_rng(1)
    spec = rng.standard_normal((6, 4, 24, 32)).astype(np.float32)
    small = resize_spectral(spec, (12, 20))
    assert isinstance(small, np.ndarray) and small.shape == (6, 4, 12, 20)
    direct = spectral_to_trajectories(small, 20)
    via_traj = resize_flow(torch.from_numpy(spectral_to_trajectories(spec, 20)), (12, 20)).numpy()
    np.testing.assert_allclose(direct, via_traj, atol=1e-4)
    with pytest.raises(ValueError, match=r"\(K, 4, H, W\)"):
        resize_spectral(spec[:, :2], (12, 20))


def test_motion_metric_is_mean_displacement_length():
    traj = torch.zeros(4, 2, 3, 5)
    traj[1, 0, 0, 0], traj[2, 1, 0, 0], traj[3, :, 0, 0] = 3.0, 4.0, torch.tensor([3.0, 4.0])
    w = motion_metric(traj)
    assert w.shape == (1, 3, 5)
    assert w[0, 0, 0].item() == pytest.approx((3 + 4 + 5) / 4) and w[0, 1:].abs().max() == 0
    z = splat_metric(w[None])
    assert z.max().item() == pytest.approx(4.0) and z.min().item() == 0.0
    torch.testing.assert_close(splat_metric(3 * w[None]), z)  # amplification does not change depth order


def test_fill_holes_keeps_valid_pixels_and_interpolates_gaps():
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 3, 32, 64).clone()
    valid = torch.ones(1, 1, 32, 64)
    valid[..., 10:20, 30:36] = 0
    out = fill_holes(ramp * valid, valid)
    torch.testing.assert_close(out * valid, ramp * valid)
    hole = out[..., 10:20, 30:36]
    assert hole.min() > ramp[0, 0, 0, 24] and hole.max() < ramp[0, 0, 0, 42]  # between its neighbours


def test_zero_motion_renders_the_image():
    image = _texture()
    frames = render_video(image, np.zeros((3, 2, 40, 56), np.float32))
    assert frames.shape == (3, 40, 56, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames, np.broadcast_to(image, frames.shape))


def test_integer_translation_moves_the_image():
    image = _texture()
    traj = np.zeros((2, 2, 40, 56), np.float32)
    traj[1, 0], traj[1, 1] = 5.0, 3.0
    frame = render_video(image, traj)[1]
    np.testing.assert_array_equal(frame[3:, 5:], image[:-3, :-5])
    # the uncovered strip is hole-filled from its neighbourhood, not left black
    assert frame[:3].mean() > 40 and frame[:, :5].mean() > 40


def test_fast_foreground_occludes_static_background():
    """A moving square passes over a static background: the motion metric puts it in front."""
    image = np.full((32, 48, 3), 40, np.uint8)
    image[10:20, 10:20] = (250, 30, 30)
    traj = np.zeros((2, 2, 32, 48), np.float32)
    traj[:, 0, 10:20, 10:20] = np.array([0.0, 6.0])[:, None, None]
    frame = render_video(image, traj)[1]
    # the square wins with weight exp(4) ≈ 55 against the background's 1: within 2 % of its colour
    assert np.abs(frame[11:19, 20:26].astype(int) - [250, 30, 30]).max() <= 5
    # without the metric (all Z equal) square and background are averaged there
    src = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    flow = torch.from_numpy(traj[1:])
    flat, _ = splat_frames(src, flow, torch.zeros(1, 1, 32, 48))
    assert flat[0, 0, 14, 22] < 160


def test_baseline_reproduces_synthetic_frames():
    """Against exact ground truth: frames of a synthetic clip match the real frames far better than
    the static image does, and far better than with the motion doubled (the check can fail)."""
    video = generate_video(5, 0, SynthConfig(num_frames=40, width=128, height=80))
    frames = render_video(video.frames[0], video.trajectories)
    wrong = render_video(video.frames[0], 2 * video.trajectories)
    ts = range(4, 40, 5)
    ok = np.mean([_psnr(frames[t], video.frames[t]) for t in ts])
    static = np.mean([_psnr(video.frames[0], video.frames[t]) for t in ts])
    doubled = np.mean([_psnr(wrong[t], video.frames[t]) for t in ts])
    solid = np.mean([_psnr(frames[t], video.frames[t], video.visible[t] & video.solid) for t in ts])
    assert ok > static + 4 and ok > doubled + 3, (ok, static, doubled)
    assert solid > 36, solid


def test_bad_inputs_are_named():
    image = _texture()
    with pytest.raises(ValueError, match="image must be an"):
        render_video(image.astype(np.float32), np.zeros((2, 2, 40, 56), np.float32))
    with pytest.raises(ValueError, match=r"trajectories must have shape \(T, 2, H, W\)"):
        render_video(image, np.zeros((2, 3, 40, 56), np.float32))
    with pytest.raises(ValueError, match="resize them first"):
        render_video(image, np.zeros((2, 2, 20, 28), np.float32))
