"""gid.pipeline.video_metrics against independent computations and analytic motion."""
import numpy as np
import pytest
import scipy.linalg

from gid.pipeline.video_metrics import (
    feature_statistics, frame_seam_ratio, frechet_distance, frechet_feature_distance,
    kernel_inception_distance, loop_seam_error, mean_motion_magnitude, motion_magnitude_distance,
    sliding_window_frechet,
)


def _scipy_frechet(mu1, s1, mu2, s2):
    """The textbook formula with scipy.linalg.sqrtm (the pytorch-fid computation)."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def test_frechet_matches_scipy_sqrtm_full_rank():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 12)) @ rng.standard_normal((12, 12))
    b = rng.standard_normal((300, 12)) @ rng.standard_normal((12, 12)) + 0.5
    mu1, s1 = feature_statistics(a)
    mu2, s2 = feature_statistics(b)
    expected = _scipy_frechet(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_frechet_rank_deficient_matches_small_sqrtm():
    """Fewer samples than dimensions: Σ = A Aᵀ is singular. Tr((Σ1Σ2)^{1/2}) = Tr((A1ᵀ Σ2 A1)^{1/2}),
    an n×n full-rank problem scipy.sqrtm solves reliably: an independent ground truth."""
    rng = np.random.default_rng(1)
    dim, n = 64, 10
    x1 = rng.standard_normal((n, dim))
    x2 = rng.standard_normal((n, dim)) * 1.5 + 0.2
    mu1, s1 = feature_statistics(x1)
    mu2, s2 = feature_statistics(x2)
    assert np.linalg.matrix_rank(s1) == n - 1
    a1 = (x1 - mu1).T / np.sqrt(n - 1)  # Σ1 = a1 a1ᵀ
    trace_covmean = np.trace(scipy.linalg.sqrtm(a1.T @ s2 @ a1)).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_covmean
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-7)


def test_frechet_one_dimensional_closed_form():
    # W2² between N(μ1, σ1²) and N(μ2, σ2²) is (μ1−μ2)² + (σ1−σ2)²
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


@pytest.mark.parametrize("n", [8, 500])
def test_frechet_identical_is_zero_and_symmetric(n):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, 32))
    y = rng.standard_normal((n, 32)) + 0.3
    assert frechet_feature_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert frechet_feature_distance(x, y) == pytest.approx(frechet_feature_distance(y, x), rel=1e-9)
    assert frechet_feature_distance(x, y) > 0.1


def test_frechet_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance([np.nan], [[1.0]], [0.0], [[1.0]])
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(np.zeros((1, 4)))


def _direct_kid(x, y):
    """Unbiased MMD² with k(a, b) = (aᵀb/d + 1)³ by explicit O(n²) loops, ×100."""
    m, d = x.shape
    k = lambda a, b: (float(a @ b) / d + 1.0) ** 3  # noqa: E731
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return 100 * (kxx + kyy - 2 * kxy)


def test_kid_matches_direct_quadratic_computation():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((30, 5))
    y = rng.standard_normal((30, 5)) * 1.3 + 0.4
    # one subset holding every vector: the subset draw only permutes, which MMD² ignores
    mean, std = kernel_inception_distance(x, y, num_subsets=1, subset_size=30)
    assert mean == pytest.approx(_direct_kid(x, y), rel=1e-10)
    assert std == 0.0
    assert kernel_inception_distance(y, x, num_subsets=1, subset_size=30)[0] == pytest.approx(mean, rel=1e-10)


def test_kid_same_distribution_near_zero_and_deterministic():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    shifted = rng.standard_normal((400, 16)) + 0.5
    same = kernel_inception_distance(x, y, num_subsets=20, subset_size=200)
    different = kernel_inception_distance(x, shifted, num_subsets=20, subset_size=200)
    assert abs(same[0]) < 3 * same[1] + 1e-3
    assert different[0] > 50 * abs(same[0])
    assert kernel_inception_distance(x, shifted, num_subsets=20, subset_size=200) == different


def test_sliding_window_frechet_localises_a_difference_in_time():
    rng = np.random.default_rng(5)
    real = [rng.standard_normal((60, 4)) for _ in range(6)]
    fake = [r.copy() for r in real]
    for f in fake:
        f[30:40] += 3.0  # frames 30..39 differ
    starts, values = sliding_window_frechet(real, fake, window=10, stride=10)
    assert starts.tolist() == [0, 10, 20, 30, 40, 50]
    assert np.allclose(values[[0, 1, 2, 4, 5]], 0.0, atol=1e-8)
    assert values[3] == pytest.approx(4 * 9.0, rel=1e-6)  # mean shift of 3 in each of 4 dims
    with pytest.raises(ValueError, match="fewer than the window"):
        sliding_window_frechet(real, fake, window=61, stride=1)


@pytest.fixture(scope="module")
def truth():
    from gid.datasets.synthetic import SynthConfig, generate_video

    return generate_video(11, 0, SynthConfig(num_frames=48, width=64, height=48))


def test_loop_seam_error_zero_for_a_loop_and_linear_in_drift():
    num_frames = 40
    t = np.arange(num_frames)[:, None, None, None]
    # a sinusoid of period T−1 returns exactly to F_0 at t = T−1: the paper's looping condition
    loop = np.concatenate([np.sin(2 * np.pi * t / (num_frames - 1)), np.zeros_like(t, dtype=float)], 1) * np.ones((1, 1, 4, 5))
    assert loop_seam_error(loop) == pytest.approx(0.0, abs=1e-12)
    drifts = [0.0, 0.01, 0.05, 0.2]
    values = [loop_seam_error(loop + d * t * np.array([0.6, 0.8])[None, :, None, None]) for d in drifts]
    assert values == pytest.approx([d * (num_frames - 1) for d in drifts])


def test_loop_seam_error_on_synthetic_motion(truth):
    traj = truth.trajectories
    expected = np.hypot(*(traj[-1] - traj[0])).mean()
    assert loop_seam_error(traj) == pytest.approx(expected)
    assert loop_seam_error(traj) > 0  # synthetic frequencies are not multiples of 1/T: no exact loop


def test_frame_seam_ratio_of_a_ramp():
    ramp = (np.arange(20, dtype=np.float32)[:, None, None, None] * 3) * np.ones((1, 4, 4, 3))
    assert frame_seam_ratio(ramp) == pytest.approx(19.0)
    loop = np.concatenate([ramp[:10], ramp[9::-1]])  # goes up and back down to frame 0
    assert frame_seam_ratio(loop) == pytest.approx(0.0)
    still = np.full((10, 4, 4, 3), 100.0)
    still[::2] += 0.05  # codec noise only
    assert np.isnan(frame_seam_ratio(still))


def test_motion_magnitude_distance_zero_on_truth_and_linear_in_scale(truth):
    maps = [mean_motion_magnitude(truth.trajectories)]
    assert maps[0].shape == (48, 64)
    assert motion_magnitude_distance(maps, maps) == 0.0
    mean = float(maps[0].mean())
    # W1 between X ≥ 0 and αX is |α − 1|·E[X]: zero on the truth, growing linearly with the error
    for alpha in (0.5, 1.2, 2.0):
        scaled = [mean_motion_magnitude(truth.trajectories * alpha)]
        assert motion_magnitude_distance(scaled, maps) == pytest.approx(abs(alpha - 1) * mean, rel=1e-5)
