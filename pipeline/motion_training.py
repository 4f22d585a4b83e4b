"""Training tasks of the motion model (gid.pipeline.training_task): the SpectralVAE and the MotionUNet.

Both read the clip table (gid.datasets.clip_table; with Ray Data for gid.stages.training.fit), decode each row to
``image (3, H, W)`` in [0, 1] and the Eq. 4-normalized spectral volume ``(K, 4, H, W)``, and write
into the model bundle ``B`` (a :class:`gid.pipeline.GIDPipeline` folder): ``gid train vae`` → ``B/vae``;
``gid train motion`` → ``B/unet``, ``B/scheduler`` (stage 1: single slices; stage 2: frequency
attention fine-tuned on whole volumes, everything else frozen). Each records its part, the data's
frequency scales, T, fps and the preset in ``B/model_index.json``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gid.datasets.clip_table import clip_table_info
from gid.pipeline.motion_presets import get_preset, spatial_multiple
from gid.pipeline.training_task import TrainingTask

# L1 weight towards moving pixels (docs/motion.md, "the VAE learns moving pixels when …"): with the
# paper's plain L1 (0) the tiny VAE decodes the synthetic scenes' sparse motion as zero.
DEFAULT_MOVING_WEIGHT = 30.0
CFG_DROPOUT = 0.1  # §4.2: the image condition is dropped with p = 0.1 for classifier-free guidance
# v-prediction (v = √ᾱ·ε − √(1−ᾱ)·z_0): at the 10-minute CPU budget of docs/motion.md it reached a lower
# amplitude error than ε-prediction on the same steps (16.5 vs 17.9 px on moving pixels, 2 000 steps).
SCHEDULER = dict(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                 clip_sample=False, prediction_type="v_prediction")


def check_bundle_matches(bundle: str | Path, info: dict[str, Any], data: str | Path) -> None:
    """ValueError naming both values when a bundle already trained in ``bundle`` has another K, T or
    size than the clip table ``data`` (``info``: :func:`clip_table_info`); nothing when it has none yet."""
    import json

    from gid.pipeline.motion_pipeline import read_bundle_config
    from gid.pipeline.unet import image_size

    if not Path(bundle).is_dir() or not any((Path(bundle) / name).is_file() for name in ("model_index.json", "bundle.json")):
        return
    config = read_bundle_config(bundle)
    have = {"num_freqs": len(config["freq_scales"]) if "freq_scales" in config else None,
            "num_frames": config.get("num_frames")}
    unet_config = Path(bundle) / "unet" / "config.json"
    if unet_config.is_file():
        unet = json.loads(unet_config.read_text())
        have["size"] = list(image_size(unet))[::-1]  # (H, W) → [width, height], the clip table's order
    wanted = {"num_freqs": info["num_freqs"], "num_frames": info["num_frames"], "size": [info["width"], info["height"]]}
    for key, value in wanted.items():
        if have.get(key) is not None and have[key] != value:
            raise ValueError(f"bundle {bundle} was trained with {key} = {have[key]}, the data {data} has {key} = "
                             f"{value}; train into a new --out folder or use data with the bundle's {key}")


def decode_batch(batch, scales: np.ndarray) -> dict[str, np.ndarray]:
    """Clip rows (a pyarrow Table or a Ray numpy batch with ``image`` and ``spectral``) →
    ``image (N, 3, H, W)`` float32 [0, 1], ``spectral (N, K, 4, H, W)`` normalized (Eq. 4)."""
    from gid.datasets.clip_table import clip_arrays
    from gid.pipeline.normalize import normalize

    arrays = clip_arrays(batch, ["image", "spectral"])
    images = arrays["image"].transpose(0, 3, 1, 2).astype(np.float32) / 255
    return {"image": images, "spectral": normalize(arrays["spectral"], scales).astype(np.float32)}


class _ClipTask(TrainingTask):
    """Common data handling: the data folder, its scales and the preset's size rules."""

    def __init__(self, data: str | Path, bundle: str | Path, preset: str = "tiny") -> None:
        from gid.pipeline.normalize import load_scales

        self.data, self.bundle = str(Path(data).resolve()), str(Path(bundle).resolve())
        self.preset = get_preset(preset)
        self.info = clip_table_info(data)
        self.scales = load_scales(Path(data) / "freq_scales.json")
        if len(self.scales) != self.info["num_freqs"]:
            raise ValueError(f"{data}/freq_scales.json has {len(self.scales)} scales for clips with "
                             f"K = {self.info['num_freqs']}")
        check_bundle_matches(bundle, self.info, data)
        m = spatial_multiple(self.preset)
        if self.info["height"] % m or self.info["width"] % m:
            raise ValueError(f"{data}: clips are {self.info['width']}x{self.info['height']}, but preset "
                             f"{self.preset.name} needs width and height divisible by {m}")

    def data_size(self) -> tuple[int, str]:
        return self.info["num_clips"], f"--data {self.data}"

    def dataset(self):
        import ray.data

        from gid.datasets.clip_table import shard_paths

        ds = ray.data.read_parquet([str(p) for p in shard_paths(self.data)], columns=["image", "spectral"])
        scales = self.scales
        return ds.map_batches(lambda b: decode_batch(b, scales), batch_format="numpy")

    def _sample_clips(self, count: int) -> dict[str, np.ndarray]:
        """The first ``count`` clips decoded (for latent statistics and pictures), without Ray."""
        import pyarrow.parquet as pq

        from gid.datasets.clip_table import shard_paths

        table = pq.read_table(shard_paths(self.data)[0], columns=["image", "spectral"]).slice(0, count)
        return decode_batch(table, self.scales)

    def _write_bundle_config(self, out: Path, components: tuple[str, ...]) -> None:
        from gid.pipeline.motion_pipeline import write_bundle_config

        write_bundle_config(out, components, freq_scales=self.scales, num_frames=self.info["num_frames"],
                            fps=self.info["fps"], preset=self.preset.name)


def pick_slices(spec, count: int):
    """``count`` distinct random frequencies per clip: ``(B, K, 4, H, W)`` → slices ``(B·count, 4, H, W)``, ``k (B, count)``."""
    import torch

    b, k = spec.shape[:2]
    freq = torch.rand(b, k, device=spec.device).argsort(dim=1)[:, :count]
    x = torch.gather(spec, 1, freq[:, :, None, None, None].expand(-1, -1, *spec.shape[2:]))
    return x.flatten(0, 1), freq


class VAETask(_ClipTask):
    """Train the SpectralVAE on ``slices_per_clip`` random frequency slices of each clip (§7 losses).

    ``moving_weight`` weights the L1 term towards moving pixels (``gid.pipeline.vae.vae_loss``);
    0 is the paper's loss.
    """

    name = "vae"

    def __init__(self, data, bundle, preset: str = "tiny", slices_per_clip: int = 4,
                 moving_weight: float = DEFAULT_MOVING_WEIGHT) -> None:
        super().__init__(data, bundle, preset)
        if not moving_weight >= 0:
            raise ValueError(f"--moving-weight must be >= 0, got {moving_weight}")
        self.slices_per_clip = min(slices_per_clip, self.info["num_freqs"])
        self.moving_weight = float(moving_weight)

    def config_dict(self) -> dict[str, Any]:
        return {"preset": self.preset.name, "vae": self.preset.vae, "num_freqs": self.info["num_freqs"],
                "size": [self.info["width"], self.info["height"]], "slices_per_clip": self.slices_per_clip,
                "moving_weight": self.moving_weight}

    def build_model(self):
        from gid.pipeline.vae import SpectralVAE

        return SpectralVAE(**self.preset.vae)

    def loss(self, model, batch, step):
        from gid.pipeline.vae import vae_loss

        x, _ = pick_slices(batch["spectral"], self.slices_per_clip)
        recon, posterior = model(x)
        return vae_loss(recon, posterior, x, moving_weight=self.moving_weight)

    def save(self, model, out):
        """``B/vae`` with ``scaling_factor`` = 1/std of the latents of up to 64 training clips."""
        import torch

        out = Path(out)
        x = torch.from_numpy(self._sample_clips(64)["spectral"]).flatten(0, 1)
        with torch.no_grad():
            z = torch.cat([model.eval().encode(c).mode() for c in x.split(256)])
        model.register_to_config(scaling_factor=float(1.0 / z.std().clamp_min(1e-6)))
        model.save_pretrained(out / "vae")
        self._write_bundle_config(out, ("vae",))
        return out / "vae"

    def visualize(self, model, out):
        """Data vs reconstruction of 8 training clips: mean amplitude per frequency, and the amplitude
        images of two of them."""
        import torch

        from gid.pipeline.normalize import denormalize
        from gid.pipeline.spectral import frequencies_hz
        from gid.pipeline.visualize import mean_amplitude, plot_amplitude_maps, plot_spectra

        clips = self._sample_clips(8)
        x = torch.from_numpy(clips["spectral"])
        with torch.no_grad():
            recon = model.eval()(x.flatten(0, 1), sample_posterior=False)[0].reshape(x.shape)
        volumes = {"data": denormalize(x.numpy(), self.scales),
                   "VAE reconstruction": denormalize(recon.numpy(), self.scales)}
        hz = frequencies_hz(self.info["num_freqs"], self.info["num_frames"], self.info["fps"])
        return [plot_spectra(Path(out) / "vae_spectrum.png", {k: mean_amplitude(v, self.info["num_frames"]) for k, v in volumes.items()},
                             hz, "VAE: mean amplitude per frequency"),
                plot_amplitude_maps(Path(out) / "vae_amplitude.png", {k: v[:2] for k, v in volumes.items()},
                                    self.info["num_frames"], hz,
                                    "VAE: amplitude A_k (px) of training clips, data vs reconstruction",
                                    images=clips["image"][:2])]


class MotionTask(_ClipTask):
    """Train the MotionUNet (v-prediction, MSE; ``SCHEDULER``) on VAE latents of the clips.

    Stage 1: ``slices_per_clip`` random frequencies of each clip, independent slices.
    Stage 2: all K slices of each clip with the frequency attention layers, which are the only
    trained parameters (the stage-1 weights come from ``B/unet`` and stay frozen).
    """

    def __init__(self, data, bundle, preset: str = "tiny", stage: int = 1, slices_per_clip: int = 4) -> None:
        super().__init__(data, bundle, preset)
        if stage not in (1, 2):
            raise ValueError(f"--stage must be 1 or 2, got {stage}")
        for part in ["vae"] + (["unet"] if stage == 2 else []):
            if not (Path(bundle) / part / "config.json").is_file():
                raise FileNotFoundError(f"{bundle}/{part}: missing; run `gid train "
                                        f"{'vae' if part == 'vae' else 'motion --stage 1'} --out {bundle}` first")
        self.stage, self.slices_per_clip = stage, min(slices_per_clip, self.info["num_freqs"])
        self.name = "motion" if stage == 1 else "motion_stage2"
        self.latent_factor = 2 ** (len(self.preset.vae["block_out_channels"]) - 1)

    def config_dict(self) -> dict[str, Any]:
        return {"preset": self.preset.name, "unet": self.preset.unet, "stage": self.stage,
                "num_freqs": self.info["num_freqs"], "size": [self.info["width"], self.info["height"]],
                "slices_per_clip": self.slices_per_clip, "scheduler": SCHEDULER}

    def setup(self, device) -> None:
        from diffusers import DDIMScheduler

        from gid.pipeline.vae import SpectralVAE

        self._vae = SpectralVAE.from_pretrained(Path(self.bundle) / "vae").to(device).eval().requires_grad_(False)
        self._scheduler = DDIMScheduler(**SCHEDULER)

    def build_model(self):
        from gid.pipeline.unet import MotionUNet

        f = self.latent_factor
        model = MotionUNet(sample_size=(self.info["height"] // f, self.info["width"] // f), latent_factor=f,
                           num_freqs=self.info["num_freqs"], freq_attention=self.stage == 2, **self.preset.unet)
        if self.stage == 2:
            model.requires_grad_(False)
            for p in model.frequency_attention_parameters():
                p.requires_grad_(True)
        return model

    def init_model(self, model, device) -> None:
        if self.stage == 2:
            from gid.pipeline.unet import MotionUNet

            model.load_stage1(MotionUNet.from_pretrained(Path(self.bundle) / "unet"))

    def loss(self, model, batch, step):
        import torch

        image, spec = batch["image"] * 2 - 1, batch["spectral"]
        b, k = spec.shape[:2]
        if self.stage == 1:
            x, freq = pick_slices(spec, self.slices_per_clip)
        else:
            x, freq = spec.flatten(0, 1), torch.arange(k, device=spec.device).expand(b, k)
        m = freq.shape[1]
        keep = (torch.rand(b, 1, 1, 1, device=image.device) >= CFG_DROPOUT).to(image.dtype)
        cond = (image * keep).repeat_interleave(m, dim=0)
        with torch.no_grad():
            z0 = self._vae.encode_latents(x)
        noise = torch.randn_like(z0)
        t = torch.randint(0, SCHEDULER["num_train_timesteps"], (b,), device=z0.device).repeat_interleave(m)
        zt = self._scheduler.add_noise(z0, noise, t)
        pred = model(zt, t, freq.flatten(), cond)
        loss = torch.nn.functional.mse_loss(pred.float(), self._scheduler.get_velocity(z0, noise, t))
        return loss, {"mse": float(loss.detach())}

    def save(self, model, out):
        from diffusers import DDIMScheduler

        out = Path(out)
        model.save_pretrained(out / "unet")
        DDIMScheduler(**SCHEDULER).save_pretrained(out / "scheduler")
        self._write_bundle_config(out, ("unet", "scheduler"))
        return out / "unet"

    def visualize(self, model, out):
        """Data vs motion sampled (20 DDIM steps) for 4 training images: mean amplitude per frequency,
        and the amplitude images."""
        import torch

        from gid.pipeline.motion_pipeline import GIDPipeline
        from gid.pipeline.normalize import denormalize
        from gid.pipeline.spectral import frequencies_hz
        from gid.pipeline.visualize import mean_amplitude, plot_amplitude_maps, plot_spectra

        clips = self._sample_clips(4)
        pipe = GIDPipeline.from_pretrained(self.bundle)
        pipe.register_modules(unet=model.eval())
        sampled = pipe(torch.from_numpy(clips["image"]), num_inference_steps=20, progress=False)
        volumes = {"data": denormalize(clips["spectral"], self.scales), "sampled": sampled.numpy()}
        hz = frequencies_hz(self.info["num_freqs"], self.info["num_frames"], self.info["fps"])
        return [plot_spectra(Path(out) / "motion_spectrum.png", {k: mean_amplitude(v, self.info["num_frames"]) for k, v in volumes.items()},
                             hz, "sampled vs data motion"),
                plot_amplitude_maps(Path(out) / "motion_amplitude.png", volumes, self.info["num_frames"], hz,
                                    "motion: amplitude A_k (px) of training clips, data vs sampled", images=clips["image"])]
