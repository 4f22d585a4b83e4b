"""Rendering frames from one image and its motion (paper §5): softmax splatting, the baseline.

Frame t is frame 0 forward-warped by ``F_t`` with softmax splatting (Niklaus & Liu 2020), each
source pixel weighted by ``exp(Z(p))`` where ``Z`` comes from the motion magnitude, the paper's
depth proxy (§5)::

    W(p) = (1/T)·Σ_t ‖F_t(p)‖₂                         (pixels)
    Z(p) = METRIC_RANGE · W(p) / max(max_p W(p), 1 px)   ∈ [0, METRIC_RANGE],  METRIC_RANGE = 4

so the fastest pixel of the image is ``exp(4) ≈ 55`` times more "in front" than a static one,
whatever the image size or amplification: normalising by the maximum (instead of using pixels
directly) keeps ``Z`` resolution- and amplitude-invariant and far inside the range where ``exp``
is finite; the 1 px floor keeps near-static images from amplifying noise. The range was chosen on
held-out synthetic clips (4 videos, seed 100, 60 frames, PSNR of the baseline against the real
frames): range 2 / 3 / 5 / 8 / 20 gave 32.0 / 32.2 / 32.2 / 31.8 / 31.3 dB, raw pixels ``Z = W``
31.9 dB and no metric (plain average) 30.4 dB. A sharper softmax loses the anti-aliased mixing
of overlapping moving pixels; a flatter one lets static background bleed over moving plants.

Where (almost) no source pixel lands (disocclusions: splatted coverage ``Σ b < COVERAGE_MIN =
0.75`` in ``sum`` mode; 0.5 / 0.9 measured 0.25 dB worse / 0.0 dB better on the clips above, and
0.75 leaves room for the stretching of real motion), the baseline fills the hole by push-pull interpolation (Gortler et al. 1996): coverage-weighted
averages on a pyramid, pulled back down, so holes take the colour of their surroundings.

``render_video(image, trajectories, renderer=None)`` renders a whole clip either with this
baseline ("splat") or with a learned :class:`gid.pipeline.frame_renderer.FrameRenderer`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gid.kernels import softsplat
from gid.pipeline.heap import keep_freed_memory

METRIC_RANGE = 4.0
COVERAGE_MIN = 0.75


def motion_metric(trajectories: torch.Tensor) -> torch.Tensor:
    """``W(p) = mean_t ‖F_t(p)‖`` (§5): ``(..., T, 2, H, W)`` → ``(..., 1, H, W)`` in pixels.

    ``hypot`` of the two components: ``linalg.vector_norm`` over that strided axis took 10 s for
    150 frames at 752×600 on one core, ``hypot`` 0.13 s (same values within 4e-7).
    """
    return torch.hypot(trajectories.select(-3, 0), trajectories.select(-3, 1)).mean(dim=-3).unsqueeze(-3)


def splat_metric(weight: torch.Tensor) -> torch.Tensor:
    """``Z = METRIC_RANGE·W / max(max W, 1 px)`` per image: ``(B, 1, H, W)`` → ``(B, 1, H, W)`` in [0, 4]."""
    peak = weight.amax(dim=(-2, -1), keepdim=True).clamp_min(1.0)
    return (METRIC_RANGE * weight / peak).clamp(0.0, METRIC_RANGE)


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize flow ``(B, 2, H, W)`` to ``size = (h, w)`` and rescale it: x by ``w/W``, y by ``h/H``."""
    height, width = flow.shape[-2:]
    if (height, width) == tuple(size):
        return flow
    out = F.interpolate(flow, size=size, mode="bilinear", align_corners=False, antialias=True)
    scale = torch.tensor([size[1] / width, size[0] / height], dtype=flow.dtype, device=flow.device)
    return out * scale.view(1, 2, 1, 1)


def resize_spectral(spectral: np.ndarray | torch.Tensor, size: tuple[int, int]) -> Any:
    """Resize a spectral volume ``(K, 4, H, W)`` to ``size = (h, w)`` with its motion rescaled.

    The spectrum is linear in the trajectories, so resizing it is resizing every ``F_t``: channels
    ``(Re Sx, Im Sx)`` scale by ``w/W`` and ``(Re Sy, Im Sy)`` by ``h/H``. Returns the input's kind.
    """
    is_numpy = isinstance(spectral, np.ndarray)
    spec = torch.as_tensor(np.asarray(spectral, dtype=np.float32)) if is_numpy else spectral
    if spec.ndim != 4 or spec.shape[1] != 4:
        raise ValueError(f"spectral volume must have shape (K, 4, H, W), got {tuple(spec.shape)}")
    height, width = spec.shape[-2:]
    out = F.interpolate(spec, size=size, mode="bilinear", align_corners=False, antialias=True)
    sx, sy = size[1] / width, size[0] / height
    out = out * torch.tensor([sx, sx, sy, sy], dtype=out.dtype, device=out.device).view(1, 4, 1, 1)
    return out.numpy() if is_numpy else out


def fill_holes(image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Push-pull hole filling: ``image (B, C, H, W)``, ``valid (B, 1, H, W)`` in [0, 1] → ``(B, C, H, W)``.

    Push: coverage-weighted 2×2 averages up a pyramid. Pull: from the coarsest level down, each level
    keeps its own average where it has data (weight ``min(1, valid)``) and takes the upsampled
    coarser level elsewhere. Pixels with ``valid = 1`` are returned unchanged.
    """
    levels = [(image * valid, valid)]
    while min(levels[-1][1].shape[-2:]) > 1:
        color, weight = levels[-1]
        levels.append((F.avg_pool2d(color, 2, ceil_mode=True), F.avg_pool2d(weight, 2, ceil_mode=True)))
    color, weight = levels[-1]
    filled = color / weight.clamp_min(1e-8)
    for color, weight in reversed(levels[:-1]):
        up = F.interpolate(filled, size=color.shape[-2:], mode="bilinear", align_corners=False)
        alpha = weight.clamp(0.0, 1.0)
        filled = alpha * (color / weight.clamp_min(1e-8)) + (1.0 - alpha) * up
    return filled


def splat_frames(image: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline renderer: softmax splatting of ``image`` plus push-pull hole filling.

    Args:
        image: ``(B, C, H, W)`` source frame(s) I_0 (any value range).
        flow: ``(B, 2, H, W)`` forward flow ``F_t`` in pixels.
        metric: ``(B, 1, H, W)`` ``Z`` from :func:`splat_metric`.

    Returns:
        ``(frame (B, C, H, W), valid (B, 1, H, W))``: the rendered frame and the mask (0/1) of pixels
        that received splatted colour (the rest were hole-filled).
    """
    warped = softsplat(image, flow, metric, mode="soft")
    coverage = softsplat(torch.ones_like(image[:, :1]), flow, None, mode="sum")
    valid = (coverage >= COVERAGE_MIN).to(image.dtype)
    return fill_holes(warped, valid), valid


def _check_inputs(image: np.ndarray, trajectories: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be an (H, W, 3) uint8 array, got {got}")
    if trajectories.ndim != 4 or trajectories.shape[1] != 2:
        raise ValueError(f"trajectories must have shape (T, 2, H, W), got {trajectories.shape}")
    if trajectories.shape[2:] != image.shape[:2]:
        raise ValueError(f"trajectories are {trajectories.shape[3]}x{trajectories.shape[2]} but the image is "
                         f"{image.shape[1]}x{image.shape[0]}; resize them first (gid.pipeline.warping.resize_flow)")


def render_video(image: np.ndarray, trajectories: np.ndarray, renderer: Any = None, batch_size: int | None = None,
                 progress: bool = False, workers: int | None = None) -> np.ndarray:
    """Render frames ``t = 0 … T−1`` of frame 0 moving along ``trajectories`` (§5).

    The learned renderer runs the way a video wants it: the feature pyramid of frame 0 once per
    photo (:meth:`~gid.pipeline.frame_renderer.FrameRenderer.encode`), channels-last convolutions in
    :func:`render_dtype` (bfloat16 where the hardware has it: the splatting, hole filling and the
    frame itself stay float32), no autograd, batches as :func:`render_plan` sizes them, and freed
    batches kept for the next one (:func:`~gid.pipeline.heap.keep_freed_memory`). Against the plain
    float32 forward pass the frames differ by at most 2 of 255 levels (bfloat16; identical
    frames in float32 up to convolution rounding), see ``tests/test_render_speed.py``.

    On a CPU, frames are rendered one at a time by ``workers`` threads at once, each on one
    intra-op thread (:func:`render_plan`): softmax splatting's scatters run on one core whatever the
    thread count, and one frame's working set stays in cache where a batch's does not (752×600,
    ``tiny``, 2 cores: 2 threads × 1 frame render 1.4× the frames/s of batches of 2 on two intra-op
    threads; on one thread a batch of 2 is 1.6× slower per frame than single frames).

    Args:
        image: ``(H, W, 3)`` uint8 RGB, frame 0.
        trajectories: ``(T, 2, H, W)`` float32 displacements ``F_t`` in pixels at the image's size.
        renderer: ``None`` for the softsplat baseline, or a :class:`~gid.pipeline.frame_renderer.FrameRenderer`
            (run on its own device, in eval mode, without gradients).
        batch_size: frames rendered per call; ``None``: :func:`render_plan`'s.
        progress: show a tqdm bar.
        workers: batches rendered at once; ``None``: :func:`render_plan`'s.

    Returns:
        ``(T, H, W, 3)`` uint8 frames.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    trajectories = np.asarray(trajectories, dtype=np.float32)
    _check_inputs(image, trajectories)
    height, width = image.shape[:2]
    device = next(renderer.parameters()).device if renderer is not None else torch.device("cpu")
    plan = render_plan(height, width, renderer, device)
    workers, batch_size = workers or plan[0], batch_size or plan[1]
    layout = torch.channels_last if renderer is not None else torch.contiguous_format
    dtype = render_dtype(device) if renderer is not None else torch.float32
    if device.type == "cpu":
        keep_freed_memory(max(RENDER_MEMORY, workers * batch_size * frame_bytes(height, width, renderer)))
    traj = torch.from_numpy(trajectories)
    metric = splat_metric(motion_metric(traj)[None]).to(device)  # (1, 1, H, W)
    source = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float().div(255.0).to(device)
    source = source.contiguous(memory_format=layout)
    frames = np.empty((len(trajectories), *image.shape), np.uint8)
    autocast = lambda: torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)  # noqa: E731
    with torch.inference_mode(), autocast():
        pyramid = None
        if renderer is not None:
            renderer.eval().to(memory_format=layout)
            pyramid = renderer.encode(source)

    def render_batch(start: int) -> int:
        with torch.inference_mode(), autocast():  # both are per thread
            flow = traj[start:start + batch_size].to(device).contiguous(memory_format=layout)
            n = len(flow)
            z = metric.expand(n, -1, -1, -1)
            if renderer is None:
                out = splat_frames(source.expand(n, -1, -1, -1), flow, z)[0]
            else:
                out = renderer.decode(pyramid, source, flow, z)
            frames[start:start + n] = out.clamp_(0, 1).mul_(255).round_().byte().permute(0, 2, 3, 1).cpu().numpy()
        return n

    starts = range(0, len(traj), batch_size)
    bar = tqdm(total=len(traj), desc="render", unit="frame", disable=not progress)
    threads = torch.get_num_threads()
    try:
        if workers > 1:
            torch.set_num_threads(1)
        with ThreadPoolExecutor(workers) as pool:
            for done in pool.map(render_batch, starts):
                bar.update(done)
    finally:
        torch.set_num_threads(threads)
        bar.close()
    return frames


def render_plan(height: int, width: int, renderer: Any = None, device: torch.device | None = None) -> tuple[int, int]:
    """``(workers, batch_size)`` of :func:`render_video`: on a CPU one frame per intra-op thread, each
    thread rendering alone (measured fastest at 256×204 and 752×600, both renderers); on a GPU one
    stream of batches as large as :func:`render_batch_size` allows. ``device`` None: the CPU."""
    if device is None or device.type == "cpu":
        return torch.get_num_threads(), 1
    return 1, render_batch_size(height, width, renderer)


def render_dtype(device: torch.device) -> torch.dtype:
    """The learned renderer's convolution dtype: bfloat16 on CUDA and on CPUs with native bfloat16
    (oneDNN; AVX-512 BF16 or AMX: 2-3× the float32 convolution speed), float32 elsewhere."""
    if device.type == "cuda":
        return torch.bfloat16
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return torch.float32


SPLAT_BYTES_PER_PIXEL = 200
FEATURE_BYTES_PER_PIXEL = 18
RENDER_MEMORY = 1 << 30


def frame_bytes(height: int, width: int, renderer: Any = None) -> int:
    """Working memory of one frame of a render batch, in bytes (fitted to peak RSS on CPU).

    ``H·W·(200 + 18·Σ_l C_l/4^l)`` with ``C_l`` the renderer's width at pyramid level l (none for
    the splat baseline): measured at 376×300, batches 1 and 3, 173 / 887 / 1 600 bytes per pixel
    for splat / ``tiny`` / ``paper``.
    """
    features = 0.0 if renderer is None else sum(c / 4**level for level, c in enumerate(renderer.config.channels))
    return int(height * width * (SPLAT_BYTES_PER_PIXEL + FEATURE_BYTES_PER_PIXEL * features))


def render_batch_size(height: int, width: int, renderer: Any = None, memory: int = RENDER_MEMORY,
                      largest: int = 8) -> int:
    """Frames per GPU batch so that one batch's working set (:func:`frame_bytes`) stays within ``memory`` bytes.

    Between 1 and ``largest``: past a few frames a batch only adds memory (the convolutions are
    already large enough to keep the device busy), so 752×600 gets 2 frames with ``tiny``, 256×160
    gets 8. (A CPU renders single frames, :func:`render_plan`.)
    """
    return max(1, min(largest, memory // max(frame_bytes(height, width, renderer), 1)))
