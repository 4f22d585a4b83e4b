"""`gid animate`: a photo and a motion in, an MP4 of the right size and content out; clear errors."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gid.datasets.synthetic import SynthConfig, generate_video
from gid.datasets.video_io import read_video
from gid.pipeline.animate import animate, spectral_to_motion
from gid.pipeline.warping import render_video
from gid.pipeline.frame_renderer import FrameRenderer
from gid.pipeline.spectral import spectral_to_trajectories

CFG = SynthConfig(num_frames=32, width=64, height=48)


def gid(*args):
    return subprocess.run([sys.executable, "-m", "gid.stages.cli", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A synthetic photo, its exact spectral volume (.npy) and real frames."""
    folder = tmp_path_factory.mktemp("scene")
    video = generate_video(2, 0, CFG)
    Image.fromarray(video.frames[0]).save(folder / "photo.png")
    np.save(folder / "spectral.npy", video.spectral)
    return folder, video


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def test_animate_cli_writes_the_rendered_clip(scene, tmp_path):
    folder, video = scene
    out = gid("animate", folder / "photo.png", "--out", tmp_path / "v.mp4", "--spectral", folder / "spectral.npy",
              "--frames", 32, "--gif")
    assert out.returncode == 0, out.stderr
    frames, fps = read_video(tmp_path / "v.mp4")
    assert frames.shape == (32, 48, 64, 3) and fps == 30
    assert (tmp_path / "v.gif").stat().st_size > 1000
    expected = animate(video.frames[0], video.spectral, num_frames=32)
    assert np.mean([_psnr(frames[t], expected[t]) for t in range(32)]) > 30  # H.264 is the only difference


def test_ground_truth_motion_reproduces_the_real_frames(scene):
    """Where the real clip changes, frames rendered with the true motion (truncated to K = 16
    frequencies) match it far better than the still photo, and better than doubled motion."""
    _, video = scene
    frames = animate(video.frames[0], video.spectral, num_frames=32)
    doubled = animate(video.frames[0], video.spectral, num_frames=32, amplify=2.0)
    ts = range(4, 32, 4)
    changed = [np.abs(video.frames[t].astype(int) - video.frames[0]).max(-1) > 10 for t in ts]
    score = lambda fr: np.mean([_psnr(fr[t][m], video.frames[t][m]) for t, m in zip(ts, changed)])
    rendered, still, wrong = score(frames), score(np.broadcast_to(video.frames[0], frames.shape)), score(doubled)
    # measured: 20.8, 17.1 and 18.4 dB (a 64x48 clip: changed pixels are mostly edges)
    assert rendered > still + 3 and rendered > wrong + 1.5, (rendered, still, wrong)


def test_show_motion_adds_a_panel_and_amplify_scales_motion(scene):
    _, video = scene
    frames = animate(video.frames[0], video.spectral[:4], num_frames=8, show_motion=True)
    assert frames.shape == (8, 48, 128, 3)
    still = animate(video.frames[0], video.spectral[:4], num_frames=8, amplify=0.0)
    assert np.array_equal(still, np.broadcast_to(video.frames[0], still.shape))


def test_motion_at_another_resolution_is_rescaled():
    """Uniform motion given at 32x24 and rendered at 96x48: x displacements ×3, y ×2, exactly."""
    rng = np.random.default_rng(0)
    small = np.broadcast_to(rng.standard_normal((5, 4, 1, 1)), (5, 4, 24, 32)).astype(np.float32)
    full = spectral_to_motion(small, (48, 96), 12)
    truth = spectral_to_trajectories(small, 12)[..., :1, :1]
    assert full.shape == (12, 2, 48, 96)
    np.testing.assert_allclose(full[:, 0], np.broadcast_to(3 * truth[:, 0], (12, 48, 96)), atol=1e-5)
    np.testing.assert_allclose(full[:, 1], np.broadcast_to(2 * truth[:, 1], (12, 48, 96)), atol=1e-5)


def test_untrained_renderer_equals_the_splat_baseline(scene, tmp_path):
    _, video = scene
    traj = spectral_to_trajectories(video.spectral[:3], 6)
    torch.manual_seed(0)
    renderer = FrameRenderer(channels=(8, 16), blocks=(1, 1))
    np.testing.assert_array_equal(render_video(video.frames[0], traj, renderer), render_video(video.frames[0], traj))
    renderer.save_pretrained(tmp_path / "renderer")
    np.save(tmp_path / "low.npy", video.spectral[:3])
    out = gid("animate", scene[0] / "photo.png", "--out", tmp_path / "v.mp4", "--spectral", tmp_path / "low.npy",
              "--frames", 6, "--renderer", tmp_path / "renderer")
    assert out.returncode == 0 and "learned renderer" in out.stdout, out.stderr


def test_spectral_frames_keeps_amplitudes_in_pixels(scene, tmp_path):
    """A 32-frame volume rendered as 64 frames: rescaled by 64/32, every other frame is the same."""
    folder, video = scene
    out = gid("animate", folder / "photo.png", "--out", tmp_path / "v.mp4", "--spectral", folder / "spectral.npy",
              "--frames", 64, "--spectral-frames", 32)
    assert out.returncode == 0, out.stderr
    frames, _ = read_video(tmp_path / "v.mp4")
    same = animate(video.frames[0], video.spectral, num_frames=32)
    assert np.mean([_psnr(frames[2 * t], same[t]) for t in range(0, 32, 4)]) > 30


def test_animate_with_a_model_bundle(tmp_path):
    """--model: a random tiny bundle predicts the motion; the video has the photo's own size and is
    what the in-process pipeline renders."""
    from gid.pipeline import GIDPipeline
    from gid.testing.bundles import write_random_bundle

    write_random_bundle(tmp_path / "b", num_frames=30)
    yy, xx = np.mgrid[0:50, 0:90]
    photo = np.stack([xx * 2.8, yy * 5.0, 128 + 100 * np.sin(xx / 5) * np.cos(yy / 4)], -1).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "p.png")  # smooth: H.264's 4:2:0 chroma would wreck colour noise
    out = gid("animate", tmp_path / "p.png", "--out", tmp_path / "v.mp4", "--model", tmp_path / "b",
              "--frames", 30, "--steps", 2)
    assert out.returncode == 0, out.stderr
    for stage in ("load", "sample", "render", "encode"):  # progress names every stage
        assert f"gid animate: {stage} " in out.stderr
    frames, _ = read_video(tmp_path / "v.mp4")
    assert frames.shape == (30, 50, 90, 3)
    expected = GIDPipeline.from_pretrained(tmp_path / "b").animate(photo, num_frames=30, num_inference_steps=2)
    assert np.mean([_psnr(frames[t], expected[t]) for t in range(0, 30, 5)]) > 28


@pytest.mark.parametrize("args,message", [
    (["{photo}", "--out", "{tmp}/v.mp4"], "exactly one of --model"),
    (["{photo}", "--out", "{tmp}/v.mp4", "--spectral", "{spec}", "--model", "{tmp}"], "exactly one of --model"),
    (["{tmp}/text.png", "--out", "{tmp}/v.mp4", "--spectral", "{spec}"], "not a readable image"),
    (["{tmp}/dot.png", "--out", "{tmp}/v.mp4", "--spectral", "{spec}"], "too small"),
    (["{photo}", "--out", "{tmp}/v.avi", "--spectral", "{spec}"], "must end in .mp4 (--out"),
    (["{photo}", "--out", "{tmp}/v.mp4", "--spectral", "{tmp}/flat.npy"], "(K, 4, H, W)"),
    (["{photo}", "--out", "{tmp}/v.mp4", "--spectral", "{spec}", "--frames", "8"], "too few"),
    (["{photo}", "--out", "{tmp}/v.mp4", "--spectral", "{spec}", "--renderer", "{tmp}"], "give a trained renderer folder"),
    (["{photo}", "--out", "{tmp}/v.mp4", "--model", "{tmp}"], "not a model bundle"),
    (["{photo}", "--out", "{tmp}/v.mp4", "--spectral", "{spec}", "--max-side", "9000"], "beyond the renderer's limit"),
])
def test_bad_input_gives_one_line_errors(scene, tmp_path, args, message):
    (tmp_path / "text.png").write_text("not an image")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    np.save(tmp_path / "flat.npy", np.zeros((4, 4)))
    fill = {"photo": scene[0] / "photo.png", "spec": scene[0] / "spectral.npy", "tmp": tmp_path}
    out = gid("animate", *[a.format(**fill) for a in args])
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr


def test_a_video_too_big_for_memory_is_refused_with_the_side_that_fits():
    """752x600, 150 frames needs ~1.8 GB plus a render batch: with 1 GB available it is refused before any
    work, and the suggested --max-side fits."""
    from gid.pipeline.animate import animate_bytes, check_size

    with pytest.raises(ValueError, match=r"needs about .* GB .* use --max-side (\d+)") as err:
        check_size(600, 752, 150, 1024, available=1 << 30)
    side = int(str(err.value).rsplit("--max-side ", 1)[1].split()[0])
    assert animate_bytes(side * 600 // 752, side, 150) <= 1 << 30 < animate_bytes(600, 752, 150)
    check_size(600, 752, 150, 1024, available=4 << 30)


def test_pick_renderer_keeps_the_learned_one_only_where_it_changes_frames(scene):
    """An untrained renderer (zero correction) renders splat's frames: splat is picked. One whose head is
    not zero changes them: it is kept."""
    from gid.pipeline.animate import pick_renderer

    _, video = scene
    traj = spectral_to_trajectories(video.spectral, 32)
    torch.manual_seed(0)
    renderer = FrameRenderer(channels=(8, 16), blocks=(1, 1))
    assert pick_renderer(video.frames[0], traj, renderer)[0] is None
    torch.nn.init.normal_(renderer.head.weight, std=0.05)
    chosen, why = pick_renderer(video.frames[0], traj, renderer)
    assert chosen is renderer and why.startswith("learned")
