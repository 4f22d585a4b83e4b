"""Renderer training pairs and `gid train renderer` on the shared Ray Train machinery."""
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from gid.datasets.clip_table import make_clip_row, write_shard
from gid.datasets.render_pairs import read_render_pairs, write_synthetic_render_clips
from gid.datasets.synthetic import SynthConfig, generate_video
from gid.pipeline.warping import motion_metric, splat_metric
from gid.pipeline.frame_renderer_losses import RenderLoss, RenderLossConfig

CFG = SynthConfig(num_frames=24, width=64, height=48)
MARGIN_DB = 0.1  # trained renderer over splat, PSNR on changed pixels (measured +0.28 dB at this budget)


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    return write_synthetic_render_clips(tmp_path_factory.mktemp("pairs"), 4, CFG, seed=3, target_frames=3)


def test_pairs_hold_the_exact_frames_and_motion(pairs_dir):
    pairs = read_render_pairs(pairs_dir)
    assert pairs["source"].shape == (12, 48, 64, 3) and pairs["flow"].shape == (12, 2, 48, 64)
    row = pq.read_table(pairs_dir / "clips").to_pylist()[0]
    video = generate_video(3, 0, CFG)
    t = row["target_t"][0]
    np.testing.assert_array_equal(pairs["source"][0], video.frames[0])
    np.testing.assert_array_equal(pairs["target"][0], video.frames[t])
    np.testing.assert_allclose(pairs["flow"][0], video.trajectories[t], atol=0.01)  # float16 storage
    # Z from the K = 12 spectrum is close to Z from the full trajectories
    exact = splat_metric(motion_metric(torch.from_numpy(video.trajectories))[None])[0].numpy()
    assert np.abs(pairs["metric"][0] - exact).mean() < 0.1
    assert len(read_render_pairs(pairs_dir, max_pairs=5)["flow"]) == 5


def test_clip_table_without_targets_is_refused(tmp_path):
    video = generate_video(3, 0, CFG)
    (tmp_path / "clips").mkdir()
    write_shard([make_clip_row("v", 0, 30.0, video.frames[0], video.spectral, 24, 1.0)], tmp_path / "clips" / "a.parquet")
    with pytest.raises(ValueError, match="--target-frames"):
        read_render_pairs(tmp_path)


def test_loss_is_zero_only_for_the_target():
    torch.manual_seed(0)
    target, source = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    loss = RenderLoss(RenderLossConfig())
    zero, parts = loss(target.clone().requires_grad_(), target, source)
    assert zero.item() == pytest.approx(0.0, abs=1e-6) and set(parts) == {"l1", "ssim", "gradient"}
    pred = (target + 0.1 * torch.randn_like(target)).requires_grad_()
    value, _ = loss(pred, target, source)
    value.backward()
    assert value.item() > 0.05 and pred.grad.abs().sum() > 0


@pytest.mark.ray
def test_trained_renderer_beats_splat_on_held_out_clips(ray_local, pairs_dir, tmp_path):
    """`fit` trains the renderer into OUT/renderer (with an MLflow picture); on held-out clips (never
    seen, exact motion) the trained renderer beats the splat baseline by at least MARGIN_DB of PSNR
    where the clip changes, and over the whole frame. Small budget for CI; docs/animate.md has the
    longer runs.

    Measured at this budget (40 steps): +0.28 dB on changed pixels (24.19 vs 23.91 dB), +0.25 dB over
    whole frames; a refinement that does nothing would give the splat frame itself (+0 dB).
    Tried broken: a renderer that ignores the flow (``flow = flow * 0`` first in FrameRenderer.forward)
    fails here: 17.97 dB on changed pixels, 5.9 dB below splat. Not caught: warping only the feature
    pyramid with zero flow (the splat base still moves) still reaches +0.27 dB, so at this budget the
    gain comes from refining the splatted frame, not from the warped features."""
    from gid.testing.render_eval import compare_on_videos
    from gid.pipeline.frame_renderer import FrameRenderer
    from gid.pipeline.renderer_training import RendererTask
    from gid.pipeline.training_loop import TrainConfig
    from gid.stages.training import fit

    task = RendererTask(pairs_dir, "tiny")
    result = fit(task, TrainConfig(max_steps=40, batch_size=4, learning_rate=1e-3, checkpoint_every=20,
                                   log_every=10, ema_decay=0.0, cache_data=False), tmp_path / "bundle")
    assert result.model_dir == (tmp_path / "bundle" / "renderer").resolve() and result.metrics["step"] == 40
    assert list((tmp_path / "bundle" / "mlartifacts").rglob("renderer.png"))
    renderer = FrameRenderer.from_pretrained(result.model_dir)
    held_out = [generate_video(1000, i, CFG) for i in range(2)]
    scores = compare_on_videos(held_out, renderer, [5, 10, 15, 20])
    assert scores["renderer"]["psnr_changed"] >= scores["splat"]["psnr_changed"] + MARGIN_DB, scores
    assert scores["renderer"]["psnr"] > scores["splat"]["psnr"], scores
    with pytest.raises(ValueError, match="--config must be one of"):
        RendererTask(pairs_dir, "huge")
