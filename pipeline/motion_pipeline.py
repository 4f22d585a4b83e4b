"""MotionPipeline: sample a spectral volume from one image (paper §4.2 sampling, §6 looping, §6 amplification).

Per image, the K latent slices ``z (K, C, h, w)`` start as Gaussian noise and are denoised by DDIM
(diffusers ``DDIMScheduler``, η = 0) with classifier-free guidance (§4.2)::

    ε̂ = (1 + w)·ε(z; t, k, I_0) − w·ε(z; t, k, ∅),    ∅ = an all-zero image.

The paper uses w = 1.75 and 250 steps; the defaults here (:data:`SAMPLING`, shared by `gid animate`,
`gid render`, `gid interact`, `gid serve` and `gid demo`; gid.pipeline.sampling) are what measured best for a *single*
sample of the trained `tiny` model (docs/motion.md): w = 1.75 put more error into one sample than
predicting no motion at all.

A U-Net trained for v-prediction (the scheduler's ``prediction_type``) is read as a noise predictor
through ``ε = √ᾱ_t·v + √(1−ᾱ_t)·z_t``, so guidance, looping and the DDIM step below work on ε for both.

Seamless looping (§6, Eq. 5, universal guidance): at each step the clean latent predicted from ε̂,
``ẑ_0 = (z_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t``, is decoded to motion ``F = irfft(denormalize(VAE(ẑ_0)))`` and

    L_g = ‖F_{T−1} − F_0‖₁ + ‖∇F_{T−1} − ∇F_0‖₁      (L1 norms: sums over pixels, ∇ = forward differences)
    ε̂ ← ε̂ + u·σ_t·∇_z L_g,    σ_t = √(1−ᾱ_t),  u = 200,

with ``r`` self-recurrence iterations per step (re-noise ``z_{t−1}`` back to ``z_t`` and repeat).
As in universal guidance, the gradient goes through the denoiser (ẑ_0 depends on z_t directly and
through ε̂), the VAE decoder, the inverse Eq. 4 and the inverse DFT: one backward pass per step.

The bundle folder ``B`` holds ``vae/``, ``unet/``, ``scheduler/``, ``freq_scales.json`` and
``bundle.json`` (num_frames, fps, num_freqs, size, latent factor, preset).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gid.pipeline.normalize import denormalize, load_scales
from gid.pipeline.sampling import SAMPLING, check_sampling
from gid.pipeline.spectral import scale_motion, spectral_to_trajectories
from gid.pipeline.unet import MotionUNet
from gid.pipeline.vae import SpectralVAE, image_gradients

BUNDLE_FILE = "bundle.json"


def read_bundle_info(bundle: str | Path) -> dict[str, Any]:
    """``bundle.json`` of a model bundle; FileNotFoundError naming what to run when it is missing."""
    path = Path(bundle) / BUNDLE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{bundle}: not a gid model bundle (no {BUNDLE_FILE}); "
                                f"run `gid train vae --data DATA --out {bundle}` first")
    return json.loads(path.read_text())


def write_bundle_info(bundle: str | Path, **info: Any) -> dict[str, Any]:
    """Merge ``info`` into ``bundle.json`` (created if absent) and return the result."""
    path = Path(bundle) / BUNDLE_FILE
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update(info)
    path.write_text(json.dumps(data, indent=1))
    return data


def write_random_bundle(out: str | Path, num_frames: int, preset: str = "tiny", seed: int = 0,
                        fps: float = 30.0) -> Path:
    """An untrained bundle (random weights, scales ``linspace(2, 0.1, K)``) in the layout training writes.

    For smoke tests and benchmarks of everything downstream of the model (sampling cost, `gid render`,
    `gid serve`) without a training run. Returns ``out``.
    """
    from diffusers import DDIMScheduler

    from gid.pipeline.motion_presets import get_preset
    from gid.pipeline.normalize import save_scales

    out = Path(out)
    torch.manual_seed(seed)
    spec = get_preset(preset)
    width, height = spec.size
    vae = SpectralVAE(**spec.vae)
    factor = vae.latent_factor
    num_freqs = 16
    unet = MotionUNet(sample_size=(height // factor, width // factor), latent_factor=factor, num_freqs=num_freqs,
                      **{k: v for k, v in spec.unet.items() if k != "freq_attention_heads"})
    vae.save_pretrained(out / "vae")
    unet.save_pretrained(out / "unet")
    DDIMScheduler(num_train_timesteps=1000).save_pretrained(out / "scheduler")
    save_scales(out / "freq_scales.json", np.linspace(2.0, 0.1, num_freqs))
    write_bundle_info(out, num_frames=num_frames, fps=fps, num_freqs=num_freqs, size=[width, height],
                      latent_factor=factor, preset=preset)
    return out


def loop_seam_loss(traj: torch.Tensor) -> torch.Tensor:
    """Eq. 5's ``L_g`` of trajectories ``(B, T, 2, H, W)``: L1 norms of ``F_{T−1} − F_0`` and of its spatial
    gradients, summed over pixels (and over the batch: each sample's gradient is its own)."""
    first, last = traj[:, 0], traj[:, -1]
    (lx, ly), (fx, fy) = image_gradients(last), image_gradients(first)
    return (last - first).abs().sum() + (lx - fx).abs().sum() + (ly - fy).abs().sum()


class MotionPipeline:
    """Image → spectral volume sampler around a trained SpectralVAE + MotionUNet + DDIM scheduler.

    Args:
        vae, unet, scheduler: the models (scheduler: a diffusers ``DDIMScheduler``).
        scales: ``(K,)`` Eq. 4 scales of the training data.
        num_frames, fps: T and frame rate of the training clips (S_k's bin k is ``k·fps/T`` Hz).
    """

    def __init__(self, vae: SpectralVAE, unet: MotionUNet, scheduler, scales: np.ndarray, num_frames: int,
                 fps: float) -> None:
        if len(scales) != unet.config.num_freqs:
            raise ValueError(f"{len(scales)} frequency scales for a model with K = {unet.config.num_freqs}")
        self.vae, self.unet, self.scheduler = vae.eval(), unet.eval(), scheduler
        self.scales = np.asarray(scales, dtype=np.float64)
        self.num_frames, self.fps = int(num_frames), float(fps)

    @classmethod
    def from_bundle(cls, bundle: str | Path, device: str | torch.device = "cpu") -> "MotionPipeline":
        """Load ``B/vae``, ``B/unet``, ``B/scheduler``, ``B/freq_scales.json``, ``B/bundle.json``."""
        from diffusers import DDIMScheduler

        bundle = Path(bundle)
        info = read_bundle_info(bundle)
        for part in ("vae", "unet", "scheduler"):
            if not (bundle / part).is_dir():
                raise FileNotFoundError(f"{bundle}: no {part}/ in the bundle; run `gid train "
                                        f"{'vae' if part == 'vae' else 'motion'} --out {bundle}` first")
        unet_config = MotionUNet.load_config(bundle / "unet")
        model_size = [unet_config["sample_size"][1] * unet_config["latent_factor"],
                      unet_config["sample_size"][0] * unet_config["latent_factor"]]
        scales = load_scales(bundle / "freq_scales.json")
        for what, recorded, actual in (("K (num_freqs)", info.get("num_freqs"), unet_config["num_freqs"]),
                                       ("size", info.get("size"), model_size),
                                       ("K of freq_scales.json", unet_config["num_freqs"], len(scales))):
            if recorded is not None and list(np.atleast_1d(recorded)) != list(np.atleast_1d(actual)):
                raise ValueError(f"{bundle}: {BUNDLE_FILE} or the U-Net says {what} = {recorded}, but the bundle's "
                                 f"model has {actual}; retrain the bundle or restore its files")
        if not (isinstance(info.get("num_frames"), int) and info["num_frames"] >= 2):
            raise ValueError(f"{bundle}: {BUNDLE_FILE} has no valid num_frames (T = {info.get('num_frames')}); "
                             "retrain the bundle with `gid train vae`")
        vae = SpectralVAE.from_pretrained(bundle / "vae").to(device)
        unet = MotionUNet.from_pretrained(bundle / "unet").to(device)
        scheduler = DDIMScheduler.from_pretrained(bundle / "scheduler")
        return cls(vae, unet, scheduler, scales, info["num_frames"], info["fps"])

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def size(self) -> tuple[int, int]:
        """``(H', W')`` of the spectral volumes this model produces."""
        h, w = self.unet.config.sample_size
        return h * self.unet.config.latent_factor, w * self.unet.config.latent_factor

    def _noise(self, z: torch.Tensor, t, freq: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The U-Net's prediction as noise ε, whatever its ``prediction_type``."""
        out = self.unet(z, t, freq, cond)
        kind = self.scheduler.config.prediction_type
        if kind == "epsilon":
            return out
        if kind == "v_prediction":
            alpha_bar = self.scheduler.alphas_cumprod[torch.as_tensor(t).cpu()].to(z.device, z.dtype)
            alpha_bar = alpha_bar.reshape(-1, 1, 1, 1) if alpha_bar.ndim else alpha_bar
            return alpha_bar.sqrt() * out + (1 - alpha_bar).sqrt() * z
        raise ValueError(f"scheduler prediction_type {kind!r} is not supported (epsilon or v_prediction)")

    def _eps(self, z: torch.Tensor, t, freq: torch.Tensor, cond: torch.Tensor, guidance_scale: float) -> torch.Tensor:
        """Classifier-free guided noise ``(1+w)·ε(z; c) − w·ε(z; ∅)`` in one batched forward."""
        if guidance_scale == 0:
            return self._noise(z, t, freq, cond)
        both = self._noise(torch.cat([z, z]), t, torch.cat([freq, freq]), torch.cat([cond, torch.zeros_like(cond)]))
        eps_c, eps_u = both.chunk(2)
        return (1 + guidance_scale) * eps_c - guidance_scale * eps_u

    def decode(self, latents: torch.Tensor, batch: int) -> torch.Tensor:
        """Scaled latents ``(B·K, C, h, w)`` → denormalized spectral volumes ``(B, K, 4, H', W')``."""
        slices = self.vae.decode_latents(latents)
        spec = slices.reshape(batch, -1, *slices.shape[1:])
        return denormalize(spec, self.scales.astype(np.float32))

    def _guided_eps_and_seam_gradient(self, z: torch.Tensor, t, freq: torch.Tensor, cond: torch.Tensor,
                                      guidance_scale: float, alpha_bar: torch.Tensor, batch: int):
        """``(ε̂, ∇_z L_g)``: the gradient flows through the denoiser, the VAE decoder and the inverse DFT."""
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            eps = self._eps(z, t, freq, cond, guidance_scale)
            z0 = (z - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()
            traj = spectral_to_trajectories(self.decode(z0, batch), self.num_frames)
            (grad,) = torch.autograd.grad(loop_seam_loss(traj), z)
        return eps.detach(), grad

    @torch.no_grad()
    def __call__(self, images, num_frames: int | None = None, num_inference_steps: int = SAMPLING.num_inference_steps,
                 guidance_scale: float = SAMPLING.guidance_scale, loop: bool = False, loop_strength: float = 200.0,
                 loop_recurrence: int = 2, amplify: float | np.ndarray = 1.0, seed: int | list[int] = 0,
                 batch_size: int = 4, progress: bool = True) -> torch.Tensor:
        """Sample denormalized spectral volumes ``(B, K, 4, H', W')`` at the model's resolution.

        Args:
            images: ``(B, 3, H, W)`` float in [0, 1] (tensor or array); resized to the model's size.
            num_frames: length T' of the video to be rendered; the volume is scaled by ``T'/T`` so that
                ``spectral_to_trajectories(S, T')`` keeps the predicted amplitudes (default: T).
            num_inference_steps: DDIM steps (paper: 250; 500 for looping; default :data:`SAMPLING`).
            guidance_scale: w of classifier-free guidance (0 = conditional model only; default :data:`SAMPLING`).
            loop: apply the looping self-guidance of Eq. 5.
            loop_strength: u; loop_recurrence: self-recurrence iterations per step.
            amplify: motion scale α, scalar or ``(K,)`` per band (``scale_motion``).
            seed: image i of the call uses noise from ``seed + i``, so results do not depend on batching;
                or one seed per image (e.g. from each photo's source, `gid render`).
            batch_size: images denoised together.
        """
        from diffusers import DDIMScheduler
        from tqdm import tqdm

        images = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            raise ValueError("images must be finite floats in [0, 1]")
        check_sampling(num_inference_steps, guidance_scale, self.scheduler.config.num_train_timesteps)
        if loop_recurrence < 1:
            raise ValueError(f"loop_recurrence must be at least 1, got {loop_recurrence}")
        seeds = [seed + i for i in range(len(images))] if np.ndim(seed) == 0 else [int(s) for s in seed]
        if len(seeds) != len(images):
            raise ValueError(f"{len(seeds)} seeds for {len(images)} images")
        device, cfg = self.device, self.unet.config
        k, size = cfg.num_freqs, self.size
        cond_all = F.interpolate(images.float().to(device), size=size, mode="bilinear", antialias=True,
                                 align_corners=False) * 2 - 1
        scheduler = DDIMScheduler.from_config(self.scheduler.config, prediction_type="epsilon")  # see _noise
        scheduler.set_timesteps(num_inference_steps, device=device)
        alphas = scheduler.alphas_cumprod.to(device)
        out = []
        chunks = range(0, len(images), batch_size)
        bar = tqdm(total=len(chunks) * num_inference_steps, desc="sample motion", unit="step", disable=not progress)
        for start in chunks:
            cond = cond_all[start:start + batch_size]
            b = len(cond)
            noise = [torch.randn((k, cfg.latent_channels, *cfg.sample_size),
                                 generator=torch.Generator().manual_seed(seeds[start + i])) for i in range(b)]
            z = torch.cat(noise).to(device) * scheduler.init_noise_sigma
            gen = torch.Generator().manual_seed(seeds[start] + 10**6)
            freq = torch.arange(k, device=device).repeat(b)
            cond_k = cond.repeat_interleave(k, dim=0)
            for t in scheduler.timesteps:
                prev_t = t - scheduler.config.num_train_timesteps // num_inference_steps
                alpha_t = alphas[t]
                alpha_prev = alphas[prev_t] if prev_t >= 0 else scheduler.final_alpha_cumprod.to(device)
                for r in range(loop_recurrence if loop else 1):
                    if loop:
                        eps, grad = self._guided_eps_and_seam_gradient(z, t, freq, cond_k, guidance_scale, alpha_t, b)
                        eps = eps + loop_strength * (1 - alpha_t).sqrt() * grad
                    else:
                        eps = self._eps(z, t, freq, cond_k, guidance_scale)
                    z_prev = scheduler.step(eps, t, z).prev_sample
                    if r + 1 < (loop_recurrence if loop else 1):  # self-recurrence: back to step t
                        ratio = alpha_t / alpha_prev
                        fresh = torch.randn(z.shape, generator=gen).to(device)
                        z = ratio.sqrt() * z_prev + (1 - ratio).sqrt() * fresh
                z = z_prev
                bar.update(1)
            out.append(self.decode(z, b))
        bar.close()
        spec = torch.cat(out)
        factor = (num_frames or self.num_frames) / self.num_frames
        return scale_motion(spec, np.asarray(amplify) * factor if np.ndim(amplify) else float(amplify) * factor)
