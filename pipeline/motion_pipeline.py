"""GIDPipeline: one photo → spectral volume → video (paper §4.2 sampling, §5 rendering, §6 looping and amplification).

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

The model bundle ``B`` is a diffusers pipeline folder: ``vae/``, ``unet/``, ``scheduler/``, optionally
``renderer/`` (safetensors + config.json each) and ``model_index.json``, which names the components
and holds the pipeline's config (frequency scales, T, fps, preset); K and the training size are the
U-Net's config. ``GIDPipeline.from_pretrained(B)`` / ``save_pretrained(B)`` read and write it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from diffusers import DDIMScheduler, DiffusionPipeline

from gid.pipeline.normalize import denormalize, load_scales
from gid.pipeline.frame_renderer import FrameRenderer
from gid.pipeline.sampling import SAMPLING, check_sampling
from gid.pipeline.spectral import scale_motion, spectral_to_trajectories
from gid.pipeline.unet import MotionUNet, image_size
from gid.pipeline.vae import SpectralVAE, image_gradients

BUNDLE_INDEX = "model_index.json"  # diffusers' pipeline index: components + GIDPipeline's config
LEGACY_BUNDLE_FILE = "bundle.json"  # the layout before GIDPipeline (bundle.json + freq_scales.json)
COMPONENTS = {"vae": ("gid.pipeline.vae", "SpectralVAE"), "unet": ("gid.pipeline.unet", "MotionUNet"),
              "scheduler": ("diffusers", "DDIMScheduler"), "renderer": ("gid.pipeline.frame_renderer", "FrameRenderer")}
TRAIN_COMMAND = {"vae": "gid train vae", "unet": "gid train motion", "scheduler": "gid train motion",
                 "renderer": "gid train renderer"}


def read_bundle_config(bundle: str | Path) -> dict[str, Any]:
    """The pipeline config of a bundle (``model_index.json``): components present, ``freq_scales``,
    ``num_frames``, ``fps``, ``preset``. A bundle in the pre-GIDPipeline layout is read from its
    ``bundle.json`` + ``freq_scales.json``. Clear errors for a folder that is neither."""
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise FileNotFoundError(f"{bundle}: no such model bundle folder; train one with "
                                f"`gid train vae --data DATA --out {bundle}`")
    index = bundle / BUNDLE_INDEX
    if index.is_file():
        try:
            return json.loads(index.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{index}: not valid JSON ({err}); retrain the bundle or restore the file") from None
    legacy = bundle / LEGACY_BUNDLE_FILE
    if legacy.is_file():
        info = json.loads(legacy.read_text())
        config = {"_class_name": "GIDPipeline", "num_frames": info["num_frames"], "fps": info["fps"],
                  "preset": info.get("preset", "tiny"),
                  "freq_scales": [float(s) for s in load_scales(bundle / "freq_scales.json")]}
        config.update({name: list(COMPONENTS[name]) for name in COMPONENTS if (bundle / name).is_dir()})
        return config
    raise FileNotFoundError(f"{bundle}: not a model bundle (no {BUNDLE_INDEX}); "
                            f"train one with `gid train vae --data DATA --out {bundle}`")


def write_bundle_config(bundle: str | Path, components: tuple[str, ...] = (), **config: Any) -> dict[str, Any]:
    """Merge ``config`` and the named components into ``B/model_index.json`` (created if absent).

    Training writes a bundle one model at a time (VAE, then U-Net and scheduler, then renderer); each
    step records its part here, in the layout ``GIDPipeline.save_pretrained`` writes.
    """
    import diffusers

    bundle = Path(bundle)
    bundle.mkdir(parents=True, exist_ok=True)
    path = bundle / BUNDLE_INDEX
    data = read_bundle_config(bundle) if (path.is_file() or (bundle / LEGACY_BUNDLE_FILE).is_file()) else {}
    data.update({"_class_name": "GIDPipeline", "_diffusers_version": diffusers.__version__})
    data.update({name: list(COMPONENTS[name]) for name in components})
    data.update(config)
    if "freq_scales" in data:
        data["freq_scales"] = [float(s) for s in data["freq_scales"]]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
    return data


def loop_seam_loss(traj: torch.Tensor) -> torch.Tensor:
    """Eq. 5's ``L_g`` of trajectories ``(B, T, 2, H, W)``: L1 norms of ``F_{T−1} − F_0`` and of its spatial
    gradients, summed over pixels (and over the batch: each sample's gradient is its own)."""
    first, last = traj[:, 0], traj[:, -1]
    (lx, ly), (fx, fy) = image_gradients(last), image_gradients(first)
    return (last - first).abs().sum() + (lx - fx).abs().sum() + (ly - fy).abs().sum()


class GIDPipeline(DiffusionPipeline):
    """Image → spectral volume → video: a diffusers pipeline of SpectralVAE + MotionUNet + DDIM scheduler,
    with an optional FrameRenderer (§5; plain softmax splatting without one).

    Components are saved by ``save_pretrained(B)`` as ``B/vae``, ``B/unet``, ``B/scheduler`` and
    ``B/renderer`` (safetensors) with ``B/model_index.json``, which also carries the pipeline config:

    Args:
        vae, unet, scheduler: the motion models (scheduler: a diffusers ``DDIMScheduler``).
        renderer: a trained :class:`~gid.pipeline.frame_renderer.FrameRenderer`, or None for softmax splatting.
        freq_scales: ``(K,)`` Eq. 4 scales of the training data.
        num_frames, fps: T and frame rate of the training clips (S_k's bin k is ``k·fps/T`` Hz).
        preset: the model size preset it was built from (``gid.pipeline.motion_presets``).
    """

    _optional_components = ["renderer"]

    def __init__(self, vae: SpectralVAE, unet: MotionUNet, scheduler: DDIMScheduler,
                 renderer: FrameRenderer | None = None, freq_scales: list[float] | None = None,
                 num_frames: int = 150, fps: float = 30.0, preset: str = "tiny") -> None:
        super().__init__()
        scales = [float(s) for s in (freq_scales if freq_scales is not None else np.ones(unet.config.num_freqs))]
        if len(scales) != unet.config.num_freqs:
            raise ValueError(f"{len(scales)} frequency scales for a model with K = {unet.config.num_freqs}")
        self.register_modules(vae=vae.eval(), unet=unet.eval(), scheduler=scheduler,
                              renderer=renderer.eval() if renderer is not None else None)
        self.register_to_config(freq_scales=scales, num_frames=int(num_frames), fps=float(fps), preset=preset)

    @classmethod
    def from_pretrained(cls, bundle: str | Path, device: str | torch.device = "cpu", **kwargs) -> "GIDPipeline":
        """Load a bundle folder; clear errors for a missing folder, component or weights file.

        A bundle in the layout before GIDPipeline (``bundle.json`` + ``freq_scales.json``) loads too;
        ``save_pretrained`` writes it anew in the current layout.
        """
        bundle = Path(bundle)
        config = read_bundle_config(bundle)
        for name in ("vae", "unet", "scheduler"):
            if not (bundle / name / ("scheduler_config.json" if name == "scheduler" else "config.json")).is_file():
                raise FileNotFoundError(f"{bundle}: the bundle has no {name}/; run `{TRAIN_COMMAND[name]} "
                                        f"--data DATA --out {bundle}` first")
        from diffusers.utils import logging as diffusers_logging

        quiet = diffusers_logging.is_progress_bar_enabled()
        if quiet:  # no "Loading pipeline components" bar for a few small files
            diffusers_logging.disable_progress_bar()
        try:
            if (bundle / BUNDLE_INDEX).is_file():
                pipe = super().from_pretrained(bundle, **kwargs)
            else:  # legacy layout: the same components, the config from bundle.json
                parts = {name: (FrameRenderer if name == "renderer" else {"vae": SpectralVAE, "unet": MotionUNet,
                                "scheduler": DDIMScheduler}[name]).from_pretrained(bundle / name)
                         for name in COMPONENTS if name in config}
                pipe = cls(**parts, freq_scales=config["freq_scales"], num_frames=config["num_frames"],
                           fps=config["fps"], preset=config["preset"])
        except (OSError, ValueError, RuntimeError, KeyError) as err:
            if isinstance(err, FileNotFoundError) and str(bundle) in str(err):
                raise
            raise ValueError(f"{bundle}: cannot load the model bundle ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else err!r}); retrain it with `gid train` "
                             "or restore its files") from None
        finally:
            if quiet:
                diffusers_logging.enable_progress_bar()
        return pipe.to(device)

    @property
    def scales(self) -> np.ndarray:
        """``(K,)`` Eq. 4 frequency scales."""
        return np.asarray(self.config.freq_scales, dtype=np.float64)

    @property
    def num_frames(self) -> int:
        return int(self.config.num_frames)

    @property
    def fps(self) -> float:
        return float(self.config.fps)

    @property
    def num_freqs(self) -> int:
        return int(self.unet.config.num_freqs)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def size(self) -> tuple[int, int]:
        """``(H', W')`` of the spectral volumes this model produces (its training size)."""
        return image_size(self.unet.config)

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

    @staticmethod
    def _as_batch(images) -> torch.Tensor:
        """Photos → ``(B, 3, H, W)`` float in [0, 1]: a ``(B, 3, H, W)`` float tensor/array in [0, 1], one
        ``(H, W, 3)`` uint8 array, or a list of them (each brought to the model's size later)."""
        if isinstance(images, np.ndarray) and images.ndim == 3 and images.dtype == np.uint8:
            images = [images]
        if isinstance(images, (list, tuple)) and images and isinstance(images[0], np.ndarray) and images[0].ndim == 3:
            bad = [im.shape for im in images if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8]
            if bad:
                raise ValueError(f"photos must be (H, W, 3) uint8 arrays, got shapes {bad}")
            return [torch.tensor(im).permute(2, 0, 1)[None].float() / 255.0 for im in images]
        images = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            raise ValueError("images must be finite floats in [0, 1]")
        return [images]

    @torch.no_grad()
    def __call__(self, images, num_frames: int | None = None, num_inference_steps: int = SAMPLING.num_inference_steps,
                 guidance_scale: float = SAMPLING.guidance_scale, loop: bool = False, loop_strength: float = 200.0,
                 loop_recurrence: int = 2, amplify: float | np.ndarray = 1.0, seed: int | list[int] = 0,
                 generator: torch.Generator | list[torch.Generator] | None = None, batch_size: int = 4,
                 progress: bool = True, callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Sample denormalized spectral volumes ``(B, K, 4, H', W')`` at the model's resolution.

        Args:
            images: ``(B, 3, H, W)`` float in [0, 1] (tensor or array), or ``(H, W, 3)`` uint8 photos (one
                array or a list); resized to the model's size.
            num_frames: length T' of the video to be rendered; the volume is scaled by ``T'/T`` so that
                ``spectral_to_trajectories(S, T')`` keeps the predicted amplitudes (default: T).
            num_inference_steps: DDIM steps (paper: 250; 500 for looping; default :data:`SAMPLING`).
            guidance_scale: w of classifier-free guidance (0 = conditional model only; default :data:`SAMPLING`).
            loop: apply the looping self-guidance of Eq. 5.
            loop_strength: u; loop_recurrence: self-recurrence iterations per step.
            amplify: motion scale α, scalar or ``(K,)`` per band (``scale_motion``).
            seed: an int (image i of the call uses noise from ``seed + i``) or one seed per image (e.g. from
                each photo's source, `gid render`), so a photo's motion depends neither on batching nor on
                its neighbours.
            generator: instead of ``seed``, one ``torch.Generator`` per image (diffusers' convention).
            batch_size: images denoised together.
            callback: ``callback(step, total)`` after every denoising step.
        """
        from tqdm import tqdm

        check_sampling(num_inference_steps, guidance_scale, self.scheduler.config.num_train_timesteps)
        if loop_recurrence < 1:
            raise ValueError(f"loop_recurrence must be at least 1, got {loop_recurrence}")
        images = torch.cat([F.interpolate(im.float(), size=self.size, mode="bilinear", antialias=True,
                                          align_corners=False) for im in self._as_batch(images)]).clamp(0, 1)
        if generator is None:
            seeds = [seed + i for i in range(len(images))] if np.ndim(seed) == 0 else [int(s) for s in seed]
            generator = [torch.Generator().manual_seed(s) for s in seeds]
        elif isinstance(generator, torch.Generator):
            generator = [generator] * len(images)
        if len(generator) != len(images):
            raise ValueError(f"{len(generator)} seeds or generators for {len(images)} images")
        device, cfg = self.device, self.unet.config
        k = cfg.num_freqs
        cond_all = images.to(device) * 2 - 1
        scheduler = DDIMScheduler.from_config(self.scheduler.config, prediction_type="epsilon")  # see _noise
        scheduler.set_timesteps(num_inference_steps, device=device)
        alphas = scheduler.alphas_cumprod.to(device)
        out = []
        chunks = range(0, len(images), batch_size)
        total, done = len(chunks) * num_inference_steps, 0
        bar = tqdm(total=total, desc="sample motion", unit="step", disable=not progress)
        for start in chunks:
            cond = cond_all[start:start + batch_size]
            b = len(cond)
            gens = generator[start:start + b]
            latent_shape = (k, cfg.latent_channels, *cfg.sample_size)
            z = torch.cat([torch.randn(latent_shape, generator=g) for g in gens]).to(device) * scheduler.init_noise_sigma
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
                        fresh = torch.cat([torch.randn(latent_shape, generator=g) for g in gens]).to(device)
                        z = ratio.sqrt() * z_prev + (1 - ratio).sqrt() * fresh
                z = z_prev
                bar.update(1)
                done += 1
                if callback is not None:
                    callback(done, total)
            out.append(self.decode(z, b))
        bar.close()
        spec = torch.cat(out)
        factor = (num_frames or self.num_frames) / self.num_frames
        return scale_motion(spec, np.asarray(amplify) * factor if np.ndim(amplify) else float(amplify) * factor)

    def animate(self, image: np.ndarray, num_frames: int | None = None, amplify: float = 1.0,
                show_motion: bool = False, **sampling: Any) -> np.ndarray:
        """One photo ``(H, W, 3)`` uint8 → frames ``(T, H, W, 3)`` uint8 (``(T, H, 2W, 3)`` with the motion panel).

        The motion is sampled at the model's size (``sampling``: the keyword arguments of ``__call__``)
        and rendered at the photo's own size by the bundle's renderer, or softmax splatting without one
        (:func:`gid.pipeline.animate.animate`, §5).
        """
        from gid.pipeline.animate import animate

        num_frames = num_frames or self.num_frames
        spectral = self(image, num_frames=num_frames, batch_size=1, **sampling)[0].float().cpu().numpy()
        return animate(image, spectral, num_frames, amplify, self.renderer, show_motion)
