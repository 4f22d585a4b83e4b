"""`gid interact` end to end on a synthetic scene whose spectral volume is exact."""

import numpy as np
import pytest
from PIL import Image

from gid.datasets.synthetic import SynthConfig, generate_video
from gid.datasets.video_io import read_video

T = 32


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    video = generate_video(5, 0, SynthConfig(num_frames=T, width=64, height=48))
    root = tmp_path_factory.mktemp("interact")
    Image.fromarray(video.frames[0]).save(root / "photo.png")
    # The spectral volume at half resolution: interact must resize it (and its motion) to the photo.
    import cv2

    half = np.stack([[cv2.resize(c, (32, 24), interpolation=cv2.INTER_AREA) * 0.5 for c in s] for s in video.spectral])
    np.save(root / "spec.npy", half.astype(np.float32))
    amp = np.abs(video.spectral[1:]).sum(axis=(0, 1))
    y, x = np.unravel_index(amp.argmax(), amp.shape)
    return root, (int(x), int(y)), video.frames[0]


@pytest.fixture(scope="module")
def still(scene, tmp_path_factory):
    """The photo rendered with zero force (the reference for 'no motion', same encoder losses)."""
    from gid.pipeline.poke import InteractConfig, interact

    root, (x, y), _ = scene
    out = interact(InteractConfig(image=root / "photo.png", out=tmp_path_factory.mktemp("still") / "still.mp4",
                                  spectral=root / "spec.npy", spectral_frames=T, point=(x, y), force=(0.0, 0.0),
                                  frames=4), progress=False)
    return read_video(out)[0]


def test_zero_force_renders_the_still_photo(scene, still):
    _, _, photo = scene
    assert np.abs(still.astype(np.int16) - still[0]).max() == 0
    assert np.abs(still[0].astype(np.int16) - photo).mean() < 6  # H.264 4:2:0 of a 64x48 image


def test_pull_and_release_moves_then_settles(gid, scene, still, tmp_path):
    root, (x, y), _ = scene
    out = tmp_path / "poke.mp4"
    res = gid("interact", root / "photo.png", "--out", out, "--spectral", root / "spec.npy", "--spectral-frames", T,
              "--point", f"{x},{y}", "--pull", "6,0", "--frames", 60, "--damping", 0.4)
    assert res.returncode == 0, res.stderr
    frames, fps = read_video(out)
    assert frames.shape == (60, 48, 64, 3) and fps == 30
    frames = frames.astype(np.int16)
    assert np.abs(frames[0] - still[0]).mean() > 3.0  # pulled 6 px at t = 0
    step = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    assert step[:20].max() > 10 * step[-10:].max()  # moves, then settles
    assert np.abs(frames[-1] - still[0]).mean() < 3.0  # back at rest (H.264 residue aside)


@pytest.mark.parametrize("extra,message", [
    (["--point", "70,3", "--pull", "1,0"], "outside the 64x48 image"),
    (["--point", "3,3"], "give exactly one of --force"),
    (["--point", "3,3", "--pull", "1"], "--pull must look like A,B"),
    (["--point", "3,3", "--pull", "1,1", "--damping", "-1"], "--damping must be"),
    (["--point", "3,3", "--pull", "1,1", "--renderer", "/nonexistent"], "no such folder"),
    (["--point", "3,3", "--pull", "1,1", "--spectral-frames", "8"], "need --spectral-frames"),
    (["--point", "0,0", "--pull", "1,1"], "barely moves in this motion"),
])
def test_bad_arguments_are_one_line_errors(gid, scene, tmp_path, extra, message):
    root, _, _ = scene
    res = gid("interact", root / "photo.png", "--out", tmp_path / "o.mp4", "--spectral", root / "spec.npy", *extra)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr


def test_broken_spectral_file_is_named(gid, scene, tmp_path):
    root, _, _ = scene
    bad = tmp_path / "bad.npy"
    bad.write_text("not numpy")
    res = gid("interact", root / "photo.png", "--out", tmp_path / "o.mp4", "--spectral", bad, "--point", "3,3",
              "--pull", "1,1")
    assert res.returncode == 2 and "not a .npy array" in res.stderr and "bad.npy)" in res.stderr


def test_synth_ground_truth_npz_is_accepted(gid, synth_small, tmp_path):
    """`gid synth`'s gt/*.npz holds the exact spectral volume and frame 0: poke it directly."""
    from gid.datasets.synthetic import load_ground_truth
    from gid.pipeline.motion_source import load_spectral

    gt_path = sorted((synth_small / "gt").glob("*.npz"))[0]
    source = load_spectral(gt_path, num_frames=48)
    np.testing.assert_array_equal(source.spectral, load_ground_truth(gt_path)["spectral"])
    Image.fromarray(load_ground_truth(gt_path)["frame0"]).save(tmp_path / "f.png")
    res = gid("interact", tmp_path / "f.png", "--out", tmp_path / "o.mp4", "--spectral", gt_path, "--spectral-frames",
              48, "--point", "30,20", "--force", "0,5", "--frames", 3)
    assert res.returncode == 0, res.stderr
    np.savez(tmp_path / "other.npz", flow=np.zeros(3))
    with pytest.raises(ValueError, match="has no 'spectral' array"):
        load_spectral(tmp_path / "other.npz")
