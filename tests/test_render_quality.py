"""PSNR/SSIM against their formulas, and the VGG perceptual loss with random local weights."""
import math

import pytest
import torch

from gid.pipeline.image_quality import C1, psnr, ssim
from gid.pipeline.frame_renderer_losses import PERCEPTUAL_TAPS, RenderLoss, RenderLossConfig, VGG16Features, load_vgg16


def test_psnr_of_a_known_error():
    x = torch.full((1, 3, 8, 8), 0.5)
    assert psnr(x + 0.1, x) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 (float32 inputs)
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., :4, :] = True
    y = x.clone()
    y[..., 4:, :] += 0.5  # only outside the mask
    assert psnr(y, x, mask) == pytest.approx(120.0)  # floor of the MSE at 1e-12


def test_ssim_matches_the_closed_form_for_constant_images():
    """Constant images: variances and covariance vanish, SSIM = (2ab + C1)/(a² + b² + C1)."""
    a, b = 0.3, 0.7
    x, y = torch.full((1, 3, 16, 16), a), torch.full((1, 3, 16, 16), b)
    assert ssim(x, y) == pytest.approx((2 * a * b + C1) / (a * a + b * b + C1), rel=1e-6)
    noise = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert ssim(noise, noise) == pytest.approx(1.0)
    assert ssim(noise, noise.flip(-1)) < 0.2
    with pytest.raises(ValueError, match="one shape"):
        ssim(noise, x)


def _random_vgg_state(seed=0):
    torch.manual_seed(seed)
    model = VGG16Features()
    state = {f"features.{k.split('.', 1)[1]}": v for k, v in model.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)  # torchvision checkpoints carry the classifier too
    return model, state


def test_vgg_loads_torchvision_style_checkpoints(tmp_path):
    from safetensors.torch import save_file

    model, state = _random_vgg_state()
    torch.save(state, tmp_path / "vgg16.pth")
    save_file(state, str(tmp_path / "vgg16.safetensors"))
    model.save_pretrained(tmp_path / "folder")
    x = torch.rand(1, 3, 32, 32)
    expected = model(x)
    assert len(expected) == len(PERCEPTUAL_TAPS) and expected[-1].shape == (1, 512, 4, 4)
    for path in ("vgg16.pth", "vgg16.safetensors", "folder"):
        for a, b in zip(load_vgg16(tmp_path / path)(x), expected):
            torch.testing.assert_close(a, b)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a VGG-16 checkpoint"):
        load_vgg16(tmp_path / "other.pth")
    with pytest.raises(FileNotFoundError, match="--vgg"):
        load_vgg16(tmp_path / "missing.pth")


def test_perceptual_loss_is_the_feature_distance(tmp_path):
    model, state = _random_vgg_state(1)
    torch.save(state, tmp_path / "vgg16.pth")
    loss = RenderLoss(RenderLossConfig(vgg_path=str(tmp_path / "vgg16.pth"), focus=0.0))
    pred, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    total, parts = loss(pred, target, target)
    manual = sum((a - b).abs().mean() for a, b in zip(model(pred), model(target)))
    assert parts["perceptual"] == pytest.approx(float(manual), rel=1e-5)
    assert float(total) == pytest.approx(float((pred - target).abs().mean()) + 0.1 * float(manual), rel=1e-5)
    assert math.isfinite(float(total))


def test_compare_on_videos_scores_both_renderers_on_hard_pixels():
    """An untrained renderer is the baseline (equal scores); the baseline beats a still frame where
    the clip changes, and disocclusion holes are scored separately."""
    from gid.datasets.synthetic import SynthConfig, generate_video
    from gid.pipeline.image_quality import psnr as frame_psnr
    from gid.testing.render_eval import compare_on_videos
    from gid.pipeline.frame_renderer import FrameRenderer

    video = generate_video(4, 0, SynthConfig(num_frames=24, width=64, height=48))
    scores = compare_on_videos([video], FrameRenderer(channels=(8, 16), blocks=(1, 1)), [6, 12, 18])
    assert scores["splat"] == scores["renderer"]
    assert set(scores["splat"]) == {"psnr", "ssim", "psnr_changed", "ssim_changed", "psnr_holes"}
    source = torch.from_numpy(video.frames[0]).permute(2, 0, 1)[None].float() / 255
    target = torch.from_numpy(video.frames[[6, 12, 18]]).permute(0, 3, 1, 2).float() / 255
    changed = (target - source).abs().amax(1, keepdim=True) > 10 / 255
    assert scores["splat"]["psnr_changed"] > frame_psnr(source.expand_as(target), target, changed) + 2
    assert scores["splat"]["psnr_changed"] < scores["splat"]["psnr"]
