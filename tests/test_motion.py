"""Motion model pieces against their formulas: VAE losses, frequency attention, CFG, looping, metrics."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from gid.pipeline.motion_metrics import seam_error
from gid.pipeline.motion_pipeline import GIDPipeline, loop_seam_loss
from gid.pipeline.spectral import spectral_to_trajectories, trajectories_to_spectral
from gid.pipeline.unet import FrequencyAttention, MotionUNet
from gid.pipeline.vae import MOVING_THRESHOLD, SpectralVAE, moving_weights, multiscale_gradient_loss, vae_loss

K = 4
TINY_VAE = dict(block_out_channels=(8, 8, 8), layers_per_block=1, norm_num_groups=4)
TINY_UNET = dict(sample_size=(4, 6), latent_factor=4, num_freqs=K, block_out_channels=(16, 32), layers_per_block=1,
                 attention_head_dim=8, norm_num_groups=8, freq_attention_heads=2)


@pytest.fixture(scope="module")
def pipe():
    from diffusers import DDIMScheduler

    torch.manual_seed(0)
    vae = SpectralVAE(**TINY_VAE)
    unet = MotionUNet(**TINY_UNET, freq_attention=True)
    for p in unet.frequency_attention_parameters():  # make the stage-2 layers do something
        torch.nn.init.normal_(p, std=0.2)
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                              beta_end=0.012, clip_sample=False)
    return GIDPipeline(vae, unet, scheduler, freq_scales=np.linspace(2.0, 0.5, K), num_frames=30, fps=30.0)


def test_multiscale_gradient_loss_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 1, 3, 8, 8))

    def reference(x, y):
        total = 0.0
        for s in (1, 2, 4):
            px = x.reshape(1, 3, 8 // s, s, 8 // s, s).mean(axis=(3, 5))
            py = y.reshape(1, 3, 8 // s, s, 8 // s, s).mean(axis=(3, 5))
            total += np.abs(np.diff(px, axis=3) - np.diff(py, axis=3)).mean()
            total += np.abs(np.diff(px, axis=2) - np.diff(py, axis=2)).mean()
        return total / 3

    got = multiscale_gradient_loss(torch.from_numpy(a), torch.from_numpy(b))
    assert float(got) == pytest.approx(reference(a, b), rel=1e-10)
    # constant offsets have no gradient: the term ignores them
    assert float(multiscale_gradient_loss(torch.from_numpy(a), torch.from_numpy(a + 3.0))) == pytest.approx(0, abs=1e-12)


def test_vae_shapes_loss_weights_and_safetensors_roundtrip(tmp_path):
    torch.manual_seed(0)
    vae = SpectralVAE(**TINY_VAE).eval()
    assert vae.latent_factor == 4
    x = torch.randn(3, 4, 16, 24)
    posterior = vae.encode(x)
    assert posterior.mean.shape == (3, 4, 4, 6)
    recon, post = vae(x, sample_posterior=False)
    total, parts = vae_loss(recon, post, x)
    expected = parts["l1"] + 0.2 * parts["grad"] + 1e-6 * parts["kl"]
    assert float(total.detach()) == pytest.approx(expected, rel=1e-5)
    assert parts["l1"] == pytest.approx(float((recon - x).abs().mean().detach()), rel=1e-6)
    vae.register_to_config(scaling_factor=0.5)
    vae.save_pretrained(tmp_path / "vae")
    assert (tmp_path / "vae" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = SpectralVAE.from_pretrained(tmp_path / "vae").eval()
    assert loaded.config.scaling_factor == 0.5
    z = posterior.mode() * 0.5
    torch.testing.assert_close(loaded.decode_latents(z), vae.decode(posterior.mode()))
    with pytest.raises(ValueError, match="divisible by 4"):
        vae.encode(torch.randn(1, 4, 10, 24))


def test_moving_weight_reweights_l1_towards_moving_pixels():
    """L1 weights 1 + w on pixels above the threshold, 1 elsewhere, rescaled to mean 1 (numpy reference)."""
    rng = np.random.default_rng(3)
    x = np.zeros((2, 4, 8, 12))
    x[0, :, 2:5, 3:7] = rng.normal(0, 1, (4, 3, 4))  # a moving patch; everything else static
    x[1, 1, 6, 10] = 0.5 * MOVING_THRESHOLD           # too small to count as moving
    recon = rng.normal(0, 0.3, x.shape)
    moving = np.abs(x).max(axis=1, keepdims=True) > MOVING_THRESHOLD
    weight = 1 + 30 * moving
    expected_fit = (np.abs(recon - x) * weight / weight.mean()).mean()
    with torch.no_grad():  # the loss values are checked, not their gradients
        post = SpectralVAE(**TINY_VAE).encode(torch.zeros(1, 4, 8, 12))
    total, parts = vae_loss(torch.from_numpy(recon), post, torch.from_numpy(x), moving_weight=30)
    assert float(total) == pytest.approx(expected_fit + 0.2 * parts["grad"] + 1e-6 * parts["kl"], rel=1e-6)
    assert parts["l1"] == pytest.approx(np.abs(recon - x).mean(), rel=1e-10)  # reported unweighted
    assert float(moving_weights(torch.from_numpy(x), 30).mean()) == pytest.approx(1.0)
    # every pixel moving: the weighting changes nothing
    dense = torch.from_numpy(x + 1.0)
    assert float(vae_loss(torch.from_numpy(recon), post, dense, moving_weight=30)[0]) == pytest.approx(
        float(vae_loss(torch.from_numpy(recon), post, dense)[0]), rel=1e-12)


def test_frequency_attention_matches_per_pixel_reference():
    """(B·K, C, H, W) → (B·H·W, K, C): every pixel attends over its own K slices, nothing else."""
    torch.manual_seed(1)
    layer = FrequencyAttention(8, K, heads=2)
    torch.nn.init.normal_(layer.attention.out_proj.weight, std=0.3)
    x = torch.randn(2 * K, 8, 3, 5)
    out = layer(x)
    for b in range(2):
        for i in range(3):
            for j in range(5):
                tokens = x[b * K:(b + 1) * K, :, i, j][None]  # (1, K, C)
                q = layer.norm(tokens) + layer.position
                ref = tokens + layer.attention(q, q, q, need_weights=False)[0]
                torch.testing.assert_close(out[b * K:(b + 1) * K, :, i, j], ref[0], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="all 4 slices"):
        layer(torch.randn(K + 1, 8, 3, 5))


@pytest.mark.parametrize("name", ["tiny", "paper"])
def test_presets_build_and_run_at_their_size(name):
    """Each preset's VAE and U-Net (stage 2, frequency attention on) run at the size it is meant for:
    channels, group norms and attention heads fit, and the shapes come back as documented."""
    from gid.pipeline.motion_presets import get_preset, spatial_multiple

    preset = get_preset(name)
    width, height = preset.size
    assert width % spatial_multiple(preset) == 0 and height % spatial_multiple(preset) == 0
    torch.manual_seed(0)
    vae = SpectralVAE(**preset.vae)
    f = 2 ** (len(preset.vae["block_out_channels"]) - 1)
    unet = MotionUNet(sample_size=(height // f, width // f), latent_factor=f, num_freqs=K, freq_attention=True,
                      **preset.unet)
    with torch.no_grad():
        latents = vae.encode(torch.randn(1, 4, height, width)).mode()
        assert latents.shape == (1, 4, height // f, width // f)
        assert vae.decode(latents).shape == (1, 4, height, width)
        noise = unet(latents.expand(K, -1, -1, -1), torch.tensor(500), torch.arange(K), torch.randn(K, 3, height, width))
    assert noise.shape == (K, 4, height // f, width // f) and torch.isfinite(noise).all()


def test_stage2_starts_as_stage1_and_couples_frequencies(tmp_path):
    torch.manual_seed(2)
    stage1 = MotionUNet(**TINY_UNET).eval()
    stage2 = MotionUNet(**TINY_UNET, freq_attention=True).eval()
    stage2.load_stage1(stage1)
    z, image = torch.randn(2 * K, 4, 4, 6), torch.rand(2 * K, 3, 16, 24) * 2 - 1
    t, k = torch.full((2 * K,), 500), torch.arange(K).repeat(2)
    with torch.no_grad():
        base = stage1(z, t, k, image)
        torch.testing.assert_close(stage2(z, t, k, image), base)  # zero-initialised output projections
        for p in stage2.frequency_attention_parameters():
            torch.nn.init.normal_(p, std=0.2)
        coupled = stage2(z, t, k, image)
        torch.testing.assert_close(stage2(z, t, k, image, use_freq_attention=False), base)  # switch off
        z2 = z.clone()
        z2[1] += 1.0  # change slice k=1 of sample 0 only
        changed = stage2(z2, t, k, image)
        assert (changed[0] - coupled[0]).abs().max() > 1e-4  # slice 0 of sample 0 sees slice 1
        torch.testing.assert_close(changed[K:], coupled[K:])  # sample 1 does not
        independent = stage1(z2, t, k, image)
        torch.testing.assert_close(independent[0], base[0])  # stage 1: slices are independent
    stage2.save_pretrained(tmp_path / "unet")
    assert (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = MotionUNet.from_pretrained(tmp_path / "unet").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(z, t, k, image), coupled)
    with pytest.raises(ValueError, match="does not match"):
        MotionUNet(**{**TINY_UNET, "block_out_channels": (16, 16)}, freq_attention=True).load_stage1(stage1)


def test_classifier_free_guidance_formula(pipe):
    torch.manual_seed(3)
    z, cond = torch.randn(K, 4, 4, 6), torch.rand(K, 3, 16, 24) * 2 - 1
    freq, t = torch.arange(K), torch.tensor(700)
    with torch.no_grad():
        eps_c = pipe.unet(z, t, freq, cond)
        eps_u = pipe.unet(z, t, freq, torch.zeros_like(cond))
        guided = pipe._eps(z, t, freq, cond, 1.75)
    torch.testing.assert_close(guided, 2.75 * eps_c - 1.75 * eps_u, atol=1e-5, rtol=1e-5)


def test_sampling_is_seeded_batch_independent_and_amplifies(pipe):
    images = torch.rand(3, 3, 20, 30)  # resized to the model's 16x24
    a = pipe(images, num_inference_steps=3, seed=5, batch_size=3, progress=False)
    assert a.shape == (3, K, 4, 16, 24)
    b = pipe(images, num_inference_steps=3, seed=5, batch_size=2, progress=False)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    c = pipe(images, num_inference_steps=3, seed=5, batch_size=3, amplify=2.0, progress=False)
    torch.testing.assert_close(c, 2 * a)
    d = pipe(images, num_inference_steps=3, seed=6, batch_size=3, progress=False)
    assert (d - a).abs().max() > 1e-3
    e = pipe(images, num_frames=60, num_inference_steps=3, seed=5, batch_size=3, progress=False)
    torch.testing.assert_close(e, 2 * a)  # S scales with T so that irfft at T' keeps the amplitude
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pipe(images * 3, num_inference_steps=1, progress=False)


def test_v_prediction_is_read_as_noise(pipe):
    """ε = √ᾱ_t·v + √(1−ᾱ_t)·z_t; a pipeline whose U-Net predicts v samples through that ε."""
    from diffusers import DDIMScheduler

    v_pipe = GIDPipeline(pipe.vae, pipe.unet, DDIMScheduler.from_config(pipe.scheduler.config,
                                                                           prediction_type="v_prediction"),
                         freq_scales=pipe.scales, num_frames=30, fps=30.0)
    torch.manual_seed(0)
    z, freq = torch.randn(K, 4, 4, 6), torch.arange(K)  # one sample: all K slices (frequency attention)
    cond = (torch.rand(1, 3, 16, 24) * 2 - 1).expand(K, -1, -1, -1)
    with torch.no_grad():
        for t in (torch.tensor(10), torch.tensor([900, 400, 20, 5][:K])):
            v = pipe.unet(z, t, freq, cond)
            a = pipe.scheduler.alphas_cumprod[t].reshape(-1, 1, 1, 1).float()
            torch.testing.assert_close(v_pipe._noise(z, t, freq, cond), a.sqrt() * v + (1 - a).sqrt() * z)
            torch.testing.assert_close(pipe._noise(z, t, freq, cond), v)  # epsilon: unchanged
    images = torch.rand(1, 3, 16, 24)
    assert torch.isfinite(v_pipe(images, num_inference_steps=3, progress=False)).all()


def test_looping_guidance_lowers_the_seam(pipe):
    images = torch.rand(2, 3, 16, 24)
    plain = pipe(images, num_inference_steps=6, seed=1, progress=False)
    looped = pipe(images, num_inference_steps=6, seed=1, loop=True, loop_strength=10.0, progress=False)
    traj = lambda s: spectral_to_trajectories(s, pipe.num_frames)[None]  # noqa: E731
    for i in range(2):
        assert float(loop_seam_loss(traj(looped[i]))) < 0.8 * float(loop_seam_loss(traj(plain[i])))


def test_seam_error_of_known_motions():
    t = np.arange(60)[:, None]
    phases = np.linspace(0, 2 * np.pi, 256, endpoint=False)[None]
    periodic = np.zeros((60, 2, 1, 256))
    periodic[:, 0, 0] = 3 * np.cos(2 * np.pi * 2 * t / 60 + phases)  # bin 2: loops exactly
    spec = trajectories_to_spectral(periodic, 8)[None]
    assert seam_error(spec, 60)[0] == pytest.approx(1.0, rel=1e-3)
    drift = np.zeros((60, 2, 1, 4))
    drift[:, 1] = 0.5 * t[:, :, None] - 0.5 * 59 / 2  # steady drift: the seam jumps back T−1 steps
    assert seam_error(trajectories_to_spectral(drift, 31)[None], 60)[0] == pytest.approx(59, rel=1e-6)


def test_train_cli_reports_bad_data_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for data, message in ((tmp_path / "missing", "no such data folder"), (empty, "no clips/ folder")):
        run = subprocess.run([sys.executable, "-m", "gid.stages.cli", "train", "vae", "--data", str(data),
                              "--out", str(tmp_path / "b")], capture_output=True, text=True, timeout=400)
        assert run.returncode == 2
        assert run.stderr.strip().splitlines()[-1].startswith("gid: error:") and message in run.stderr
