"""Photos → frames, in batches: the per-photo work of `gid render`, without Ray.

The diffusion model samples the motion of a batch of photos in one call (the photos are brought to
the model's resolution, §4.2 / §6), each photo with its own noise seed (:func:`photo_seed`); each
photo is then rendered at its own size: its motion resized (§5), ``F_t = irfft(S)`` (§4.1),
softmax splatting or the learned renderer (§5). One photo that fails becomes an error, never a
failed batch.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gid.datasets.render_outputs import failure


def photo_seed(seed: int, source: str) -> int:
    """The motion noise seed of one photo: ``seed`` mixed with a hash of the photo's source (path, or
    table and row), so a photo's motion depends neither on its batch nor on the photos beside it."""
    return (int(seed) * 1_000_003 + zlib.crc32(source.encode("utf-8", "surrogateescape"))) % 2**31


@dataclass
class RenderedPhotos:
    """One batch rendered: per photo its ``frames (T, H, W, 3)`` uint8, the ``motion (K, 4, h, w)``
    float32 it was rendered from (None unless kept), the seconds its rendering took, and an error."""

    frames: list[np.ndarray | None]
    motion: list[np.ndarray | None]
    seconds: list[float]
    errors: list[str]


class PhotoRenderer:
    """Loads a model bundle once (or none, to render stored motion), then renders batches of photos.

    Args:
        model: a bundle folder (gid.pipeline.motion_pipeline); None renders only stored motion.
        renderer: ``auto`` (the bundle's ``renderer/`` if present, else softmax splatting), ``splat``
            or ``learned``.
        seed: each photo's noise seed is :func:`photo_seed` of this and the photo's source.
    """

    def __init__(self, model: Path | None, device: torch.device, *, frames: int, num_inference_steps: int,
                 guidance_scale: float, loop: bool, amplify: float, seed: int, renderer: str = "auto",
                 sample: bool = True) -> None:
        self.device, self.frames, self.amplify, self.seed = device, frames, amplify, seed
        self.sampling = {"num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale, "loop": loop}
        self.pipe = None
        if sample:
            from gid.pipeline import GIDPipeline

            self.pipe = GIDPipeline.from_pretrained(model, device=device)
        self.frame_renderer = None
        learned = model is not None and (Path(model) / "renderer").is_dir()
        if renderer == "learned" or (renderer == "auto" and learned):
            from gid.pipeline.frame_renderer import load_renderer

            self.frame_renderer = load_renderer(Path(model) / "renderer", device)

    def sample(self, images: list[np.ndarray], seeds: list[int]) -> list[torch.Tensor]:
        """Spectral volumes ``(K, 4, h', w')`` (pixels at the model's resolution) for a list of photos,
        sampled in one call with one noise seed per photo: photos of any size are brought to the
        model's ``(h', w')`` first."""
        spec = self.pipe(images, num_frames=self.frames, amplify=self.amplify, seed=seeds, batch_size=len(images),
                         progress=False, **self.sampling)
        return list(spec.float())

    def render(self, image: np.ndarray, spec: torch.Tensor) -> np.ndarray:
        """One photo ``(H, W, 3)`` and its motion ``(K, 4, h, w)`` → frames ``(T, H, W, 3)`` uint8."""
        from gid.pipeline.spectral import spectral_to_trajectories
        from gid.pipeline.warping import render_video, resize_spectral

        spec = resize_spectral(spec.to(self.device), (image.shape[0], image.shape[1]))
        trajectories = spectral_to_trajectories(spec, self.frames)
        return render_video(image, trajectories.float().cpu().numpy(), self.frame_renderer)

    def __call__(self, images: list[np.ndarray | None], sources: list[str], errors: list[str],
                 stored: list[np.ndarray | None] | None = None, keep_motion: bool = False) -> RenderedPhotos:
        """Render a batch: ``images[i] (H, W, 3)`` uint8 (None where ``errors[i]`` is set already).

        Motion is ``stored[i] (K, 4, h, w)`` scaled by ``amplify`` when given, else sampled for the
        whole batch in one call (retried photo by photo if that call fails, so one bad photo fails
        alone). ``keep_motion`` returns each photo's motion too.
        """
        from gid.pipeline.spectral import scale_motion

        errors = list(errors)
        todo = [i for i, error in enumerate(errors) if not error]
        motion: dict[int, torch.Tensor] = {}
        if stored is not None:
            for i in todo:
                motion[i] = torch.from_numpy(scale_motion(stored[i], self.amplify).astype(np.float32))
        elif todo:
            seeds = {i: photo_seed(self.seed, str(sources[i])) for i in todo}
            try:
                motion.update(zip(todo, self.sample([images[i] for i in todo], [seeds[i] for i in todo])))
            except Exception:  # noqa: BLE001 - retry one by one, so one bad item fails alone
                for i in todo:
                    try:
                        motion[i] = self.sample([images[i]], [seeds[i]])[0]
                    except Exception as err:  # noqa: BLE001
                        errors[i] = failure("motion", err)
        out = RenderedPhotos([], [], [], errors)
        for i in range(len(errors)):
            start, frames = time.perf_counter(), None
            if not errors[i]:
                try:
                    frames = self.render(images[i], motion[i])
                except Exception as err:  # noqa: BLE001
                    errors[i] = failure("render", err)
            out.frames.append(frames)
            out.seconds.append(time.perf_counter() - start)
            keep = keep_motion and not errors[i]
            out.motion.append(np.ascontiguousarray(motion[i].cpu().numpy(), np.float32) if keep else None)
        return out
