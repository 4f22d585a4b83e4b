"""Adaptive frequency normalization (paper §4.1, Eq. 4) and its mergeable statistics.

``S'_k = sign(S_k)·sqrt(|S_k| / s_k)`` with ``s_k`` the 95th percentile of ``|S_k|`` over the four
real components and the whole training set; inverse ``S_k = sign(S'_k)·S'_k²·s_k``.

Percentiles over millions of clips cannot hold all values, so :class:`FrequencyStats` keeps a
log-bucketed histogram per frequency (the DDSketch idea): every positive value ``v`` falls in
bucket ``i = ceil(log_γ v)`` with ``γ = (1+ε)/(1−ε)``, and the bucket is represented by
``2γ^i/(γ+1)``, which is within relative error ``ε`` of every value in it. Sketches from many
workers merge by adding counts, exactly, in any order.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gid.pipeline.spectral import _array_module, _is_torch

ArrayLike = Any


def _broadcast_scales(spec: ArrayLike, scales: ArrayLike) -> ArrayLike:
    """``scales (K,)`` as an array of ``spec``'s kind, shaped ``(K, 1, 1, 1)``."""
    num_freqs = spec.shape[-4]
    if tuple(np.shape(scales)) != (num_freqs,):
        raise ValueError(f"scales must have shape ({num_freqs},) to match spec {tuple(spec.shape)}, got {np.shape(scales)}")
    if _is_torch(spec):
        import torch

        s = torch.as_tensor(np.asarray(scales), dtype=spec.dtype, device=spec.device)
    else:
        s = _array_module(spec).asarray(scales, dtype=spec.dtype)
    if bool((s <= 0).any()):
        raise ValueError("scales must be positive (a zero scale means a frequency with no motion at all)")
    return s.reshape(num_freqs, 1, 1, 1)


def normalize(spec: ArrayLike, scales: ArrayLike) -> ArrayLike:
    """Eq. 4: ``sign(S)·sqrt(|S|/s_k)``. ``spec (..., K, 4, H, W)``, ``scales (K,)``."""
    s = _broadcast_scales(spec, scales)
    if _is_torch(spec):
        import torch

        return torch.sign(spec) * torch.sqrt(torch.abs(spec) / s)
    xp = _array_module(spec)
    return xp.sign(spec) * xp.sqrt(xp.abs(spec) / s)


def denormalize(spec: ArrayLike, scales: ArrayLike) -> ArrayLike:
    """Inverse of :func:`normalize`: ``sign(S')·S'²·s_k`` (smooth, so safe inside autograd)."""
    s = _broadcast_scales(spec, scales)
    if _is_torch(spec):
        import torch

        return torch.sign(spec) * spec * spec * s
    xp = _array_module(spec)
    return xp.sign(spec) * spec * spec * s


@dataclass
class FrequencyStats:
    """Mergeable per-frequency quantile sketch of ``|S_k|`` (all four real components).

    Args:
        num_freqs: K.
        relative_error: ε; every quantile is within ``ε`` relative error of a value whose rank is
            the requested one (0.5 % by default).
        min_value: values below it count as zeros (exact zeros are common: static pixels).
        max_value: values above it are clamped into the top bucket.
    """

    num_freqs: int = 16
    relative_error: float = 0.005
    min_value: float = 1e-6
    max_value: float = 1e7
    counts: np.ndarray = field(default=None, repr=False)  # (K, num_buckets) int64
    zeros: np.ndarray = field(default=None, repr=False)  # (K,) int64, values < min_value

    def __post_init__(self) -> None:
        if not 0 < self.relative_error < 0.5:
            raise ValueError(f"relative_error must be in (0, 0.5), got {self.relative_error}")
        self._log_gamma = math.log((1 + self.relative_error) / (1 - self.relative_error))
        self._offset = math.ceil(math.log(self.min_value) / self._log_gamma)
        top = math.ceil(math.log(self.max_value) / self._log_gamma)
        num_buckets = top - self._offset + 1
        if self.counts is None:
            self.counts = np.zeros((self.num_freqs, num_buckets), dtype=np.int64)
        if self.zeros is None:
            self.zeros = np.zeros(self.num_freqs, dtype=np.int64)

    @property
    def total(self) -> np.ndarray:
        """``(K,)`` number of values seen per frequency."""
        return self.counts.sum(axis=1) + self.zeros

    def update(self, spec_batch: ArrayLike) -> "FrequencyStats":
        """Add the values of ``spec_batch (..., K, 4, H, W)`` (numpy, cupy or torch)."""
        if _is_torch(spec_batch):
            spec_batch = spec_batch.detach().float().cpu().numpy()
        elif _array_module(spec_batch) is not np:
            spec_batch = spec_batch.get()
        spec_batch = np.asarray(spec_batch)
        if spec_batch.ndim < 4 or spec_batch.shape[-4] != self.num_freqs or spec_batch.shape[-3] != 4:
            raise ValueError(f"expected (..., {self.num_freqs}, 4, H, W), got {spec_batch.shape}")
        if spec_batch.dtype == np.float16:
            return self._update_float16(spec_batch)
        if not np.isfinite(spec_batch).all():
            raise ValueError("spectral volume contains NaN or inf; filter such clips before gathering statistics")
        per_freq = np.moveaxis(spec_batch, -4, 0).reshape(self.num_freqs, -1)
        num_buckets = self.counts.shape[1]
        for k in range(self.num_freqs):
            values = np.abs(per_freq[k]).astype(np.float64)
            positive = values[values >= self.min_value]
            self.zeros[k] += values.size - positive.size
            index = np.ceil(np.log(positive) / self._log_gamma).astype(np.int64) - self._offset
            self.counts[k] += np.bincount(np.clip(index, 0, num_buckets - 1), minlength=num_buckets)
        return self

    def _update_float16(self, spec_batch: np.ndarray) -> "FrequencyStats":
        """:meth:`update` for float16 volumes (what the clip table stores), by bit pattern: a float16
        has 2¹⁵ magnitudes, so a histogram of the patterns and one bucket per pattern give exactly the
        counts of the float64 path without a logarithm per value (about 2× faster on a 256×160 clip:
        27 → 10–16 ms, loaded 2-core VM)."""
        per_freq = np.moveaxis(spec_batch, -4, 0).reshape(self.num_freqs, -1).view(np.uint16) & np.uint16(0x7FFF)
        histogram = np.stack([np.bincount(bits, minlength=1 << 15) for bits in per_freq])
        if histogram[:, 0x7C00:].any():  # exponent all ones: inf and NaN
            raise ValueError("spectral volume contains NaN or inf; filter such clips before gathering statistics")
        magnitudes = np.arange(0x7C00, dtype=np.uint16).view(np.float16).astype(np.float64)
        positive = magnitudes >= self.min_value
        index = np.ceil(np.log(magnitudes[positive]) / self._log_gamma).astype(np.int64) - self._offset
        index = np.clip(index, 0, self.counts.shape[1] - 1)
        for k in range(self.num_freqs):
            self.zeros[k] += histogram[k, :0x7C00][~positive].sum()
            self.counts[k] += np.bincount(index, weights=histogram[k, :0x7C00][positive],
                                          minlength=self.counts.shape[1]).astype(np.int64)
        return self

    def merge(self, other: "FrequencyStats") -> "FrequencyStats":
        """Add ``other``'s counts into this sketch (same K and parameters required)."""
        if (other.num_freqs, other.relative_error, other.min_value, other.max_value) != (
            self.num_freqs, self.relative_error, self.min_value, self.max_value,
        ):
            raise ValueError("cannot merge FrequencyStats built with different parameters")
        self.counts += other.counts
        self.zeros += other.zeros
        return self

    def quantile(self, q: float = 0.95, nonzero: bool = False) -> np.ndarray:
        """``(K,)`` the q-quantile of ``|S_k|`` per frequency, within ``relative_error``.

        With ``nonzero=True`` values below ``min_value`` are left out, which keeps the scale
        meaningful when most pixels of a data set are static (the plain 95th percentile of data
        that is > 95 % zeros is 0, and Eq. 4 would divide by it).
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be in [0, 1], got {q}")
        out = np.zeros(self.num_freqs)
        for k in range(self.num_freqs):
            zeros = 0 if nonzero else int(self.zeros[k])
            n = zeros + int(self.counts[k].sum())
            if n == 0:
                raise ValueError(f"no values recorded for frequency {k}: update() the sketch first")
            rank = q * (n - 1)  # numpy.percentile's "linear" rank, 0-based
            if rank < zeros:
                continue
            bucket = int(np.searchsorted(np.cumsum(self.counts[k]), rank - zeros, side="right"))
            i = bucket + self._offset
            out[k] = 2.0 * math.exp(i * self._log_gamma) / (1.0 + math.exp(self._log_gamma))
        return out

    def to_json(self) -> dict:
        """Sparse JSON form: non-empty buckets only."""
        rows = []
        for k in range(self.num_freqs):
            nz = np.nonzero(self.counts[k])[0]
            rows.append({"buckets": nz.tolist(), "counts": self.counts[k, nz].tolist(), "zeros": int(self.zeros[k])})
        return {
            "num_freqs": self.num_freqs, "relative_error": self.relative_error,
            "min_value": self.min_value, "max_value": self.max_value, "freqs": rows,
        }

    @classmethod
    def from_json(cls, data: dict) -> "FrequencyStats":
        stats = cls(data["num_freqs"], data["relative_error"], data["min_value"], data["max_value"])
        for k, row in enumerate(data["freqs"]):
            stats.counts[k, row["buckets"]] = row["counts"]
            stats.zeros[k] = row["zeros"]
        return stats

    def save(self, path: str | os.PathLike) -> None:
        _atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FrequencyStats":
        return cls.from_json(json.loads(Path(path).read_text()))


def _atomic_write_json(path: str | os.PathLike, data: dict) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def save_scales(path: str | os.PathLike, scales: np.ndarray, quantile: float = 0.95, **extra: Any) -> None:
    """Write ``freq_scales.json``: ``{"scales": [s_0 … s_{K−1}], "quantile": 0.95, …}``."""
    scales = np.asarray(scales, dtype=np.float64)
    _atomic_write_json(path, {"scales": scales.tolist(), "quantile": quantile, **extra})


def load_scales(path: str | os.PathLike) -> np.ndarray:
    """``(K,)`` scales from a ``freq_scales.json``; clear errors for a missing or broken file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no frequency scales here; run `gid preprocess` (it writes freq_scales.json)")
    try:
        scales = np.asarray(json.loads(path.read_text())["scales"], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a freq_scales.json ({err})") from err
    if scales.ndim != 1 or not np.isfinite(scales).all() or (scales <= 0).any():
        raise ValueError(f"{path}: scales must be a list of positive finite numbers, got {scales.tolist()}")
    return scales
