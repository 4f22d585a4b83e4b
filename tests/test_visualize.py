"""Motion pictures: the amplitude images of spectral volumes (gid.pipeline.visualize)."""
from __future__ import annotations

import numpy as np
import pytest

from gid.pipeline.visualize import default_bins, plot_amplitude_maps


def test_default_bins_are_oscillations_below_k():
    assert default_bins(16) == [1, 2, 4, 8]
    assert default_bins(3) == [1, 2]
    assert default_bins(1) == [0]


def test_amplitude_maps_put_each_frequency_in_its_column(tmp_path):
    """One clip whose only motion is a block at k = 4: the k = 4 panel is bright where the block is,
    the other panels stay dark (each column has its own colour scale, from 0)."""
    from PIL import Image

    volume = np.zeros((1, 16, 4, 24, 32))
    volume[0, 4, 0, 6:12, 20:28] = 90.0  # Re(S_x) of bin 4 at T = 60: amplitude 2/60 · 90 = 3 px there
    freqs = np.arange(16) * 0.2
    path = plot_amplitude_maps(tmp_path / "maps.png", {"data": volume}, 60, freqs, "one block at k=4")
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=int)
    # magma's top colour is a pale yellow (252, 253, 191): bright, but unlike the white page not blue
    hot = (rgb[..., 0] > 230) & (rgb[..., 1] > 230) & (rgb[..., 2] < 215)
    hot_per_column = [int(c.sum()) for c in np.array_split(hot, 4, axis=1)]  # k = 1, 2, 4, 8 side by side
    assert hot_per_column[2] > 200 and hot_per_column[0] == hot_per_column[1] == hot_per_column[3] == 0, hot_per_column


def test_amplitude_maps_reject_mismatched_inputs(tmp_path):
    freqs = np.arange(16) * 0.2
    with pytest.raises(ValueError, match="one shape"):
        plot_amplitude_maps(tmp_path / "a.png", {"data": np.zeros((2, 16, 4, 8, 8)),
                                                 "sampled": np.zeros((1, 16, 4, 8, 8))}, 60, freqs, "t")
    with pytest.raises(ValueError, match="images must be"):
        plot_amplitude_maps(tmp_path / "a.png", {"data": np.zeros((2, 16, 4, 8, 8))}, 60, freqs, "t",
                            images=np.zeros((2, 3, 4, 4)))
