"""Eq. 4 normalization and the mergeable quantile sketch against numpy.percentile."""
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from gid.pipeline.normalize import FrequencyStats, denormalize, load_scales, normalize, save_scales


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, (3, 4, 2, 2), elements=st.floats(-1e4, 1e4)), st.floats(1e-3, 1e3))
def test_normalize_denormalize_inverse(spec, scale):
    scales = np.full(3, scale)
    np.testing.assert_allclose(denormalize(normalize(spec, scales), scales), spec, rtol=1e-9, atol=1e-9)


def test_normalize_formula_and_torch():
    spec = np.tile(np.array([-4.0, 0.0, 9.0]).reshape(1, 1, 3, 1), (1, 4, 1, 1))  # (K=1, 4, H=3, W=1)
    out = normalize(spec, np.array([4.0]))
    np.testing.assert_allclose(out[0, 0, :, 0], [-1.0, 0.0, 1.5])
    t = torch.tensor(spec, requires_grad=True)
    back = denormalize(normalize(t, [4.0]), [4.0])
    back.sum().backward()
    torch.testing.assert_close(back.detach(), t.detach())


def test_bad_scales():
    with pytest.raises(ValueError, match="scales"):
        normalize(np.ones((3, 4, 1, 1)), np.ones(2))
    with pytest.raises(ValueError, match="positive"):
        normalize(np.ones((2, 4, 1, 1)), np.array([1.0, 0.0]))


def test_sketch_quantile_within_stated_error_on_1e7_values():
    """2.5·10⁶ values per frequency × 4 frequencies = 10⁷, split over 4 merged sketches."""
    rng = np.random.default_rng(0)
    K, eps = 4, 0.005
    parts = [rng.lognormal(mean=np.arange(K)[:, None, None, None], sigma=1.5, size=(K, 4, 250, 625)) for _ in range(4)]
    for part in parts:  # some exact zeros (static pixels) and signs
        part[:, :, :10] = 0.0
        part *= rng.choice([-1, 1], size=part.shape)
    merged = FrequencyStats(num_freqs=K, relative_error=eps)
    for part in parts:
        merged.merge(FrequencyStats(num_freqs=K, relative_error=eps).update(part))
    assert merged.total.sum() == 10_000_000
    values = np.abs(np.concatenate([p.reshape(K, -1) for p in parts], axis=1))
    for q in (0.5, 0.95, 0.99):
        exact = np.percentile(values, q * 100, axis=1)
        np.testing.assert_allclose(merged.quantile(q), exact, rtol=eps * 1.01)
    nonzero_exact = [np.percentile(v[v > 0], 95) for v in values]
    np.testing.assert_allclose(merged.quantile(0.95, nonzero=True), nonzero_exact, rtol=eps * 1.01)


def test_sketch_merge_order_independent_and_json_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    a = FrequencyStats(num_freqs=2).update(rng.normal(size=(5, 2, 4, 8, 8)))
    b = FrequencyStats(num_freqs=2).update(rng.normal(size=(3, 2, 4, 8, 8)))
    ab = FrequencyStats(num_freqs=2).merge(a).merge(b)
    ba = FrequencyStats(num_freqs=2).merge(b).merge(a)
    np.testing.assert_array_equal(ab.counts, ba.counts)
    ab.save(tmp_path / "s.json")
    back = FrequencyStats.load(tmp_path / "s.json")
    np.testing.assert_array_equal(back.quantile(0.95), ab.quantile(0.95))
    with pytest.raises(ValueError, match="different parameters"):
        a.merge(FrequencyStats(num_freqs=3))


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint16, (3, 4, 5, 6), elements=st.integers(0, 0x7BFF) | st.integers(0x8000, 0xFBFF)))
def test_float16_volumes_are_counted_exactly_as_their_float32_values(patterns):
    """The bit-pattern path for float16 (what the clip table stores) against the logarithm path, on
    any finite float16 of either sign: zeros, subnormals below and above min_value, the largest ones."""
    values = patterns.view(np.float16)
    fast = FrequencyStats(num_freqs=3).update(values)
    reference = FrequencyStats(num_freqs=3).update(values.astype(np.float32))
    np.testing.assert_array_equal(fast.counts, reference.counts)
    np.testing.assert_array_equal(fast.zeros, reference.zeros)


def test_sketch_rejects_nan_and_empty():
    with pytest.raises(ValueError, match="NaN"):
        FrequencyStats(num_freqs=1).update(np.full((1, 4, 2, 2), np.nan))
    for bad in (np.inf, -np.inf, np.nan):
        with pytest.raises(ValueError, match="NaN"):
            FrequencyStats(num_freqs=1).update(np.array([[[[0.5, bad]]] * 4], dtype=np.float16))
    with pytest.raises(ValueError, match="no values"):
        FrequencyStats(num_freqs=1).quantile(0.95)


def test_scales_file(tmp_path):
    save_scales(tmp_path / "freq_scales.json", np.array([1.0, 2.0]))
    np.testing.assert_array_equal(load_scales(tmp_path / "freq_scales.json"), [1.0, 2.0])
    with pytest.raises(FileNotFoundError, match="gid preprocess"):
        load_scales(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"scales": [1.0, -1.0]}))
    with pytest.raises(ValueError, match="positive"):
        load_scales(tmp_path / "bad.json")
