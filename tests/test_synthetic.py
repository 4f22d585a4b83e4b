"""Synthetic ground truth: deterministic, consistent with its own pixels, clear errors."""
import copy

import numpy as np
import pyarrow.parquet as pq
import pytest

from gid.datasets.synthetic import (LEAN_PER_WIND, THICKNESS_RANGE, WIND_RANGE, SynthConfig, _draw_gust, _make_plant,
                                    _redraw_unseen_motion, generate_video, load_ground_truth, warp_consistency_psnr)
from gid.datasets.video_io import read_video
from gid.pipeline.spectral import spectral_to_trajectories, trajectories_to_spectral

SMALL = SynthConfig(num_frames=40, width=96, height=64)


def test_deterministic_per_seed():
    a, b, c = generate_video(3, 1, SMALL), generate_video(3, 1, SMALL), generate_video(4, 1, SMALL)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.trajectories, b.trajectories)
    assert not np.array_equal(a.frames, c.frames)


def test_phase_seed_redraws_the_motion_of_the_same_scene():
    """Same frame 0, plants, frequencies and amplitudes; only the phases, hence the trajectories, differ."""
    a, b = generate_video(3, 1, SMALL), generate_video(3, 1, SMALL, phase_seed=7)
    np.testing.assert_array_equal(a.frames[0], b.frames[0])
    assert [(p.freqs, p.amps) for p in a.plants] == [(p.freqs, p.amps) for p in b.plants]
    assert all(pa.phases != pb.phases for pa, pb in zip(a.plants, b.plants))
    assert np.abs(a.trajectories - b.trajectories).max() > 0.5
    np.testing.assert_array_equal(generate_video(3, 1, SMALL, phase_seed=7).trajectories, b.trajectories)


def test_unseen_seed_keeps_what_the_image_shows_and_redraws_the_rest():
    """Same frame 0, leans and fundamental amplitudes (∝ lean); new frequencies from a thickness in range."""
    a, b = generate_video(3, 1, SMALL), generate_video(3, 1, SMALL, unseen_seed=2)
    np.testing.assert_array_equal(a.frames[0], b.frames[0])
    assert [p.lean for p in a.plants] == [p.lean for p in b.plants]
    np.testing.assert_allclose([p.amps[0] for p in b.plants], [p.amps[0] for p in a.plants], rtol=1e-12)
    assert all(pa.freqs[0] != pb.freqs[0] for pa, pb in zip(a.plants, b.plants))
    np.testing.assert_array_equal(generate_video(3, 1, SMALL, unseen_seed=2).spectral, b.spectral)
    for plant in b.plants:
        h_rel = plant.height / SMALL.height
        implied = [0.35 * d / h_rel**2 for d in THICKNESS_RANGE]  # fundamental at the thinnest / thickest stem
        assert max(implied[0], 0.3) - 1e-9 <= plant.freqs[0] <= min(implied[1], 2.2) + 1e-9


def test_unseen_motion_draws_the_wind_from_its_posterior_given_the_leans():
    """Simulation-based calibration: scenes from the prior, the true wind's rank among 19 posterior
    draws must be uniform on 0…19 (χ² with 19 degrees of freedom below its 0.1 % point, 43.8).
    A uniform draw on the feasible interval (ignoring the w^n likelihood) fails it: χ² = 70."""
    rng = np.random.default_rng(0)
    ranks = []
    for scene in range(600):
        wind = rng.uniform(*WIND_RANGE)
        gust = _draw_gust(rng, wind)
        plants = [_make_plant(rng, SMALL, wind, gust) for _ in range(rng.integers(1, 6))]
        for plant in plants:  # what the image shows: lean = LEAN_PER_WIND · w · h / d
            assert THICKNESS_RANGE[0] <= LEAN_PER_WIND * wind * plant.height / plant.lean <= THICKNESS_RANGE[1]
        draws = [_redraw_unseen_motion(copy.deepcopy(plants), SMALL, np.random.default_rng([scene, j])) for j in range(19)]
        ranks.append(sum(d < wind for d in draws))
    counts = np.bincount(ranks, minlength=20)
    expected = len(ranks) / 20
    assert ((counts - expected) ** 2 / expected).sum() < 43.8, counts


def test_ground_truth_shapes_and_conventions():
    v = generate_video(0, 0, SMALL)
    assert v.frames.shape == (40, 64, 96, 3) and v.frames.dtype == np.uint8
    assert v.trajectories.shape == (40, 2, 64, 96)
    assert np.all(v.trajectories[0] == 0), "F_0 = 0 by definition"
    assert np.all(v.trajectories[:, 1] == 0), "plants bend horizontally"
    assert np.abs(v.trajectories).max() > 0.5, "something moves"
    np.testing.assert_allclose(v.spectral, trajectories_to_spectral(v.trajectories, SMALL.num_freqs))


def test_warping_frame0_by_ground_truth_reproduces_frame_t():
    """Frame t sampled at p + F_t(p) equals frame 0 at p on visible pixels.

    Reached on seeds 0–3: worst frame 32.5–42.1 dB, median 37.0–43.2 dB (bilinear resampling is
    the only error source). Asserted: worst > 30 dB, median > 35 dB."""
    v = generate_video(1, 0, SynthConfig(num_frames=60))
    psnr = warp_consistency_psnr(v)
    assert psnr[1:].min() > 30.0 and np.median(psnr[1:]) > 35.0, psnr
    # A wrong motion (ground truth doubled) must be detectably worse: the check can fail.
    wrong = generate_video(1, 0, SynthConfig(num_frames=60))
    wrong.trajectories *= 2
    assert np.median(warp_consistency_psnr(wrong)[1:]) < np.median(psnr[1:]) - 3


def test_motion_follows_what_is_visible():
    """Taller/thinner plants sway slower and further (cantilever rule)."""
    plants = [p for i in range(20) for p in generate_video(i, 0, SMALL).plants]
    slenderness = np.array([p.height**2 / p.thickness for p in plants])
    freq = np.array([p.freqs[0] for p in plants])
    amp_per_height = np.array([p.amps[0] / p.height for p in plants])
    thickness = np.array([p.thickness for p in plants])
    assert np.corrcoef(slenderness, freq)[0, 1] < -0.5
    assert np.corrcoef(thickness, amp_per_height)[0, 1] < -0.5


def test_written_dataset_round_trip(synth_small):
    rows = pq.read_table(synth_small / "manifest.parquet").to_pylist()
    assert len(rows) == 4 and rows[0]["num_frames"] == 48
    gt = load_ground_truth(synth_small / rows[0]["gt"])
    frames, fps = read_video(synth_small / rows[0]["video"])
    assert frames.shape == (48, 48, 64, 3) and fps == 30
    assert np.abs(frames[0].astype(int) - gt["frame0"]).mean() < 6, "H.264 at crf 17 is close to the render (chroma subsampling at 64x48)"
    back = spectral_to_trajectories(gt["spectral"], 48)
    # Plant motion is not on exact bins and the clip does not loop, so K=16 of 25 bins keep most,
    # not all, of the trajectory: relative RMS error measured 0.05–0.1 here.
    traj = gt["trajectories"]
    assert np.sqrt(np.mean((back - traj) ** 2) / np.mean(traj**2)) < 0.2


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_frames=0), "frames"), (dict(width=255), "even"), (dict(width=8, height=8), "at least 32"),
    (dict(fps=0), "fps"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SynthConfig(**kwargs)
