"""Synthetic swaying-plant videos whose motion is known exactly: the project's ground truth.

Each scene is a static textured background and a few plants (tapering stem, leaves, sometimes a
flower) drawn back to front. Plant ``i`` moves by a horizontal bending field that depends only on
the height above its base::

    s_i(y, t) = u(y)² · Σ_j a_ij · sin(2π f_ij t / fps + φ_ij),   u(y) = clip((base_y − y) / h_i, 0, 1)

so frame t is exactly ``layer_i(x − s_i(y, t), y)`` composited back to front, and the trajectory of a
pixel of frame 0 owned by plant i is ``F_t(p) = (s_i(y_p, t), 0)`` (background: 0). Motion follows
what is visible but is not fully determined by it (the point of the task, §4):

- fundamental frequency ``∝ thickness / height²`` (a cantilever's first mode): tall, thin plants
  sway slower; amplitude ``∝ wind·height / thickness``: tall, thin plants sway further;
- a per-video wind strength bends every plant's rest posture (visible lean) and scales amplitudes;
- a slow gust component shared by the scene, an overtone per plant, random phases.

All randomness comes from ``numpy.random.default_rng(SeedSequence([seed, index]))``: deterministic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from gid.pipeline.spectral import trajectories_to_spectral

MAX_FREQ_HZ = 2.6  # stays below bin 15 (3.0 Hz at T=150, 30 fps) so K=16 holds the motion


@dataclass
class SynthConfig:
    """What `gid synth` generates. Sizes in pixels, H.264 needs even width and height."""

    num_frames: int = 150
    fps: float = 30.0
    width: int = 256
    height: int = 160
    num_freqs: int = 16
    min_plants: int = 3
    max_plants: int = 7

    def __post_init__(self) -> None:
        if self.num_frames < 2:
            raise ValueError(f"--frames must be at least 2 (a clip needs motion over time), got {self.num_frames}")
        if self.fps <= 0:
            raise ValueError(f"--fps must be positive, got {self.fps}")
        if self.width < 32 or self.height < 32:
            raise ValueError(f"--size must be at least 32x32, got {self.width}x{self.height}")
        if self.width % 2 or self.height % 2:
            raise ValueError(f"--size must have even width and height (H.264), got {self.width}x{self.height}")
        if not 1 <= self.min_plants <= self.max_plants:
            raise ValueError(f"need 1 ≤ min_plants ≤ max_plants, got {self.min_plants}, {self.max_plants}")
        self.num_freqs = min(self.num_freqs, self.num_frames // 2 + 1)


@dataclass
class Plant:
    """One plant at rest. Lengths in pixels, frequencies in Hz, phases in radians."""

    base_x: float
    base_y: float
    height: float
    thickness: float
    lean: float  # horizontal offset of the top at rest (the wind's visible posture)
    color: tuple[int, int, int]
    flower_color: tuple[int, int, int] | None
    num_leaves: int
    freqs: list[float] = field(default_factory=list)
    amps: list[float] = field(default_factory=list)
    phases: list[float] = field(default_factory=list)

    def sway(self, rows: np.ndarray, t: float) -> np.ndarray:
        """``s(y, t)``: horizontal displacement (px) of this plant's points at rows ``y`` and time t (s)."""
        u = np.clip((self.base_y - rows) / self.height, 0.0, 1.0)
        wave = sum(a * math.sin(2 * math.pi * f * t + p) for f, a, p in zip(self.freqs, self.amps, self.phases))
        return (u * u) * wave


@dataclass
class SynthVideo:
    """One generated video with its exact motion.

    frames: ``(T, H, W, 3)`` uint8 RGB; trajectories: ``(T, 2, H, W)`` float32 (px);
    spectral: ``(K, 4, H, W)`` float32; visible: ``(T, H, W)`` bool, frame 0's pixel still in view at t;
    solid: ``(H, W)`` bool, pixels fully covered by one layer (no anti-aliased edge) in frame 0.
    """

    frames: np.ndarray
    trajectories: np.ndarray
    spectral: np.ndarray
    visible: np.ndarray
    solid: np.ndarray
    wind: float
    plants: list[Plant]
    fps: float


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """``(H, W, 3)`` float32 in [0, 1]: sky-to-ground gradient with multi-scale texture."""
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    sky = np.array(rng.uniform([0.45, 0.6, 0.75], [0.65, 0.8, 0.95]), np.float32)
    ground = np.array(rng.uniform([0.25, 0.2, 0.1], [0.45, 0.4, 0.2]), np.float32)
    horizon = rng.uniform(0.45, 0.7)
    blend = np.clip((rows - horizon) * 8 + 0.5, 0, 1)
    image = (1 - blend) * sky + blend * ground
    texture = np.zeros((height, width), np.float32)
    for scale, weight in ((4, 0.5), (12, 0.3), (40, 0.2)):
        noise = rng.standard_normal((height // scale + 2, width // scale + 2)).astype(np.float32)
        texture += weight * cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    image = image + 0.08 * texture[..., None] * (0.3 + blend)
    return np.clip(image, 0, 1)


WIND_RANGE = (0.3, 1.0)  # per-video wind strength
THICKNESS_RANGE = (0.6, 1.6)  # stem thickness relative to frame height / 40
LEAN_PER_WIND = 0.25  # rest lean = LEAN_PER_WIND · wind · height / thickness
AMP_PER_WIND = 0.09  # amplitude of the fundamental = AMP_PER_WIND · wind · height / thickness


def _sway_terms(rng: np.random.Generator, cfg: SynthConfig, h_rel: float, thick_rel: float, wind: float,
                gust: tuple[float, float]) -> tuple[list[float], list[float]]:
    """Frequencies (Hz) and amplitudes (px) of one plant of height ``h_rel``·H: fundamental, overtone if
    below MAX_FREQ_HZ, the scene's gust."""
    height = h_rel * cfg.height
    f1 = float(np.clip(0.35 * thick_rel / h_rel**2, 0.3, 2.2))
    amp = wind * height * AMP_PER_WIND / thick_rel
    freqs, amps = [f1], [amp]
    overtone = f1 * rng.uniform(2.2, 2.9)
    if overtone < MAX_FREQ_HZ:
        freqs.append(overtone)
        amps.append(amp * rng.uniform(0.1, 0.3))
    freqs.append(gust[0])
    amps.append(gust[1] * height / cfg.height)
    return freqs, amps


def _draw_phases(rng: np.random.Generator, count: int) -> list[float]:
    """``count`` independent phases (radians), uniform on [0, 2π)."""
    return [float(p) for p in rng.uniform(0, 2 * math.pi, count)]


def _draw_gust(rng: np.random.Generator, wind: float) -> tuple[float, float]:
    """The slow gust shared by a scene: frequency (Hz) and amplitude (px at full frame height)."""
    return float(rng.uniform(0.2, 0.45)), float(wind * rng.uniform(1.0, 3.0))


def _make_plant(rng: np.random.Generator, cfg: SynthConfig, wind: float, gust: tuple[float, float]) -> Plant:
    h_rel = rng.uniform(0.35, 0.85)  # height as a fraction of the frame
    thick_rel = rng.uniform(*THICKNESS_RANGE)
    height = h_rel * cfg.height
    freqs, amps = _sway_terms(rng, cfg, h_rel, thick_rel, wind, gust)
    greens = rng.uniform([0.1, 0.35, 0.05], [0.3, 0.65, 0.2])
    flower = tuple(int(c) for c in rng.integers(120, 256, 3)) if rng.random() < 0.6 else None
    return Plant(
        base_x=float(rng.uniform(0.08, 0.92) * cfg.width),
        base_y=float(rng.uniform(0.88, 1.02) * cfg.height),
        height=float(height),
        thickness=float(thick_rel * cfg.height / 40),
        lean=float(wind * height * LEAN_PER_WIND / thick_rel),  # the wind blows towards +x
        color=tuple(int(c * 255) for c in greens),
        flower_color=flower,
        num_leaves=int(rng.integers(2, 6)),
        freqs=freqs,
        amps=amps,
        phases=_draw_phases(rng, len(freqs)),
    )


def _redraw_unseen_motion(plants: list[Plant], cfg: SynthConfig, rng: np.random.Generator) -> float:
    """Redraw, in place, what frame 0 does not determine about the motion, given what it shows; returns the wind drawn.

    Shown: each plant's height and rest lean ``ℓ_i = LEAN_PER_WIND · w · h_i / d_i``. Not shown
    (treated as unseen; at 64×48 a stem is 0.7–1.9 px wide): the wind w and the thicknesses d_i
    separately, the gust, overtones and phases. With uniform priors on w and d_i, the posterior of w
    given the leans has density ∝ w^n on the interval where every implied ``d_i = LEAN_PER_WIND·w·h_i/ℓ_i``
    stays in THICKNESS_RANGE (drawn by inverting its CDF); each plant then gets its implied thickness's
    fundamental frequency, the amplitude its lean fixes, and new overtone, gust and phases.
    """
    lean_ratio = [p.lean / (LEAN_PER_WIND * p.height) for p in plants]  # = w / d_i
    low = max(WIND_RANGE[0], *(THICKNESS_RANGE[0] * r for r in lean_ratio))
    high = min(WIND_RANGE[1], *(THICKNESS_RANGE[1] * r for r in lean_ratio))
    power = len(plants) + 1
    wind = (low**power + rng.uniform() * (high**power - low**power)) ** (1 / power)
    gust = _draw_gust(rng, wind)
    for plant, ratio in zip(plants, lean_ratio):
        plant.freqs, plant.amps = _sway_terms(rng, cfg, plant.height / cfg.height, wind / ratio, wind, gust)
        plant.phases = _draw_phases(rng, len(plant.freqs))
    return float(wind)


def _draw_plant(plant: Plant, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """The plant at rest as a premultiplied RGBA layer ``(H, W, 4)`` float32, drawn at 4× and averaged."""
    ss = 4
    rgb = np.zeros((height * ss, width * ss, 3), np.uint8)
    alpha = np.zeros((height * ss, width * ss), np.uint8)

    def point(u: float, side: float = 0.0) -> tuple[int, int]:
        x = plant.base_x + plant.lean * u * u + side
        y = plant.base_y - u * plant.height
        return int(round(x * ss)), int(round(y * ss))

    steps = 24
    for i in range(steps):
        u0, u1 = i / steps, (i + 1) / steps
        thick = max(1, int(round(plant.thickness * (1.0 - 0.6 * u0) * ss)))
        shade = 0.8 + 0.4 * u0
        color = tuple(int(min(255, c * shade)) for c in plant.color)
        cv2.line(rgb, point(u0), point(u1), color, thick, cv2.LINE_8)
        cv2.line(alpha, point(u0), point(u1), 255, thick, cv2.LINE_8)
    for j in range(plant.num_leaves):
        u = 0.25 + 0.6 * (j + 0.5) / plant.num_leaves
        side = 1 if j % 2 == 0 else -1
        length = plant.height * rng.uniform(0.16, 0.28)
        cx, cy = point(u, side * length * 0.5)
        axes = (int(length * 0.5 * ss), int(length * 0.2 * ss))
        angle = -side * 25.0
        leaf = tuple(int(min(255, c * 1.15)) for c in plant.color)
        cv2.ellipse(rgb, (cx, cy), axes, angle, 0, 360, leaf, -1, cv2.LINE_8)
        cv2.ellipse(alpha, (cx, cy), axes, angle, 0, 360, 255, -1, cv2.LINE_8)
    if plant.flower_color is not None:
        cx, cy = point(1.0)
        radius = max(2, int(plant.height * 0.07 * ss))
        for a in range(6):
            px = int(cx + radius * math.cos(a * math.pi / 3))
            py = int(cy + radius * math.sin(a * math.pi / 3))
            cv2.circle(rgb, (px, py), radius, plant.flower_color, -1, cv2.LINE_8)
            cv2.circle(alpha, (px, py), radius, 255, -1, cv2.LINE_8)
        cv2.circle(rgb, (cx, cy), max(1, radius // 2), (240, 200, 40), -1, cv2.LINE_8)
    a = cv2.resize(alpha.astype(np.float32) / 255, (width, height), interpolation=cv2.INTER_AREA)
    premult = cv2.resize(rgb.astype(np.float32) / 255 * (alpha[..., None] / 255.0), (width, height),
                         interpolation=cv2.INTER_AREA)
    return np.dstack([premult, a]).astype(np.float32)


def _shift_rows(image: np.ndarray, shift: np.ndarray, sign: float) -> np.ndarray:
    """Sample ``image`` at ``(x + sign·shift[y], y)`` with bilinear interpolation, zeros outside."""
    height, width = image.shape[:2]
    map_x = np.arange(width, dtype=np.float32)[None, :] + sign * shift.astype(np.float32)[:, None]
    map_y = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None], (height, width))
    return cv2.remap(image, map_x, np.ascontiguousarray(map_y), cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _cover_in_front(alphas: np.ndarray) -> np.ndarray:
    """``(n+1, H, W)``: entry ``i+1`` is the alpha of all layers in front of layer i; entry 0 covers all.

    ``alphas``: ``(n, H, W)`` per-layer alpha, back to front.
    """
    cover = np.zeros((len(alphas) + 1, *alphas.shape[1:]), np.float32)
    for i in range(len(alphas) - 1, -1, -1):
        cover[i] = alphas[i] + (1 - alphas[i]) * cover[i + 1]
    return cover


def generate_video(seed: int, index: int = 0, config: SynthConfig | None = None,
                   phase_seed: int | None = None, unseen_seed: int | None = None) -> SynthVideo:
    """Render one synthetic video and its exact trajectories, visibility and spectral volume.

    Both seeds keep the scene and frame 0 and redraw part of its motion from an independent stream:

    - ``phase_seed``: every plant's phases only (a draw from the motion distribution given all the
      scene's parameters, visible or not);
    - ``unseen_seed``: everything frame 0 does not determine (:func:`_redraw_unseen_motion`): a draw
      from the motion distribution given only what the image shows, i.e. what a perfect
      image-conditioned motion model would sample.
    """
    cfg = config or SynthConfig()
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    height, width, num_frames = cfg.height, cfg.width, cfg.num_frames
    wind = float(rng.uniform(*WIND_RANGE))
    gust = _draw_gust(rng, wind)
    background = _background(rng, height, width)
    num_plants = int(rng.integers(cfg.min_plants, cfg.max_plants + 1))
    plants = sorted((_make_plant(rng, cfg, wind, gust) for _ in range(num_plants)), key=lambda p: p.base_y)
    if phase_seed is not None:
        phase_rng = np.random.default_rng(np.random.SeedSequence([seed, index, phase_seed]))
        for plant in plants:
            plant.phases = _draw_phases(phase_rng, len(plant.phases))
    if unseen_seed is not None:
        _redraw_unseen_motion(plants, cfg, np.random.default_rng(np.random.SeedSequence([seed, index, unseen_seed, 1])))
    layers = [_draw_plant(p, height, width, rng) for p in plants]  # back to front

    # Owner of each frame-0 pixel: the front-most layer covering it by more than half (−1: background).
    owner = np.full((height, width), -1, np.int16)
    for i, layer in enumerate(layers):
        owner[layer[..., 3] > 0.5] = i
    alphas = np.stack([layer[..., 3] for layer in layers])
    owner_alpha = np.take_along_axis(alphas, np.maximum(owner, 0)[None].astype(np.int64), 0)[0]
    front = _cover_in_front(alphas)[owner + 1, np.arange(height)[:, None], np.arange(width)]
    solid = (front < 1e-3) & ((owner < 0) | (owner_alpha > 0.999))

    rows = np.arange(height, dtype=np.float64)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    trajectories = np.zeros((num_frames, 2, height, width), np.float32)
    visible = np.ones((num_frames, height, width), bool)
    for t in range(num_frames):
        time = t / cfg.fps
        shifts = [p.sway(rows, time) - p.sway(rows, 0.0) for p in plants]  # F_0 = 0 by definition
        warped = [_shift_rows(layer, s, -1.0) for layer, s in zip(layers, shifts)]
        canvas = background.copy()
        for layer in warped:
            canvas = layer[..., :3] + (1 - layer[..., 3:]) * canvas
        frames[t] = np.clip(np.round(canvas * 255), 0, 255).astype(np.uint8)
        in_front = _cover_in_front(np.stack([layer[..., 3] for layer in warped]))
        for i, s in enumerate(shifts):
            mask = owner == i
            trajectories[t, 0][mask] = np.broadcast_to(s[:, None], (height, width))[mask]
            occluder = _shift_rows(in_front[i + 1], s, +1.0)  # sampled where p lands at t
            visible[t][mask] = occluder[mask] < 0.5
        visible[t][owner < 0] = in_front[0][owner < 0] < 0.5
    spectral = trajectories_to_spectral(trajectories, cfg.num_freqs)
    return SynthVideo(frames, trajectories, spectral, visible, solid, wind, plants, cfg.fps)


def warp_consistency_psnr(video: SynthVideo, frames: np.ndarray | None = None) -> np.ndarray:
    """``(T,)`` PSNR (dB) of frame 0 against frame t sampled at ``p + F_t(p)``, on visible solid pixels.

    Pass decoded ``frames`` to measure a compressed copy instead of the exact render.
    """
    frames = video.frames if frames is None else frames
    height, width = frames.shape[1:3]
    ref = frames[0].astype(np.float32)
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    out = np.full(len(frames), np.inf)
    for t in range(1, len(frames)):
        map_x = grid_x + video.trajectories[t, 0]
        map_y = grid_y + video.trajectories[t, 1]
        sampled = cv2.remap(frames[t].astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mask = video.visible[t] & video.solid
        mse = float(np.mean((sampled[mask] - ref[mask]) ** 2))
        out[t] = 10 * math.log10(255.0**2 / max(mse, 1e-10))
    return out


def video_id(seed: int, index: int) -> str:
    return f"synth_s{seed}_{index:05d}"


def write_dataset(out: str | Path, num_videos: int, config: SynthConfig | None = None, seed: int = 0,
                  crf: int = 17, progress: bool = True):
    """Write ``num_videos`` videos, their ground truth and ``manifest.parquet`` under ``out``.

    Layout: ``out/videos/{id}.mp4``, ``out/gt/{id}.npz`` (trajectories, spectral, visible, solid,
    frame0), ``out/manifest.parquet`` (one row per video, paths relative to ``out``). Every file is
    written atomically; videos already present are kept, so an interrupted run can be resumed.

    Returns:
        The manifest as a ``pyarrow.Table``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from gid.datasets.video_io import atomic_path, write_video

    cfg = config or SynthConfig()
    if num_videos < 1:
        raise ValueError(f"--num-videos must be at least 1, got {num_videos}")
    out = Path(out)
    try:
        (out / "videos").mkdir(parents=True, exist_ok=True)
        (out / "gt").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"cannot write to {out}: {err.strerror or err}; choose a writable folder") from None
    rows = []
    for index in tqdm(range(num_videos), desc="synth", unit="video", disable=not progress):
        vid = video_id(seed, index)
        video_path, gt_path = out / "videos" / f"{vid}.mp4", out / "gt" / f"{vid}.npz"
        video = None
        if not (video_path.exists() and gt_path.exists()):
            video = generate_video(seed, index, cfg)
            with atomic_path(gt_path) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez_compressed(fh, trajectories=video.trajectories, spectral=video.spectral,
                                        visible=video.visible, solid=video.solid, frame0=video.frames[0])
            write_video(video_path, video.frames, cfg.fps, crf=crf)
        rows.append({
            "video_id": vid, "video": f"videos/{vid}.mp4", "gt": f"gt/{vid}.npz", "seed": seed, "index": index,
            "num_frames": cfg.num_frames, "fps": cfg.fps, "height": cfg.height, "width": cfg.width,
            "num_freqs": cfg.num_freqs,
        })
    table = pa.Table.from_pylist(rows)
    with atomic_path(out / "manifest.parquet") as tmp:
        pq.write_table(table, tmp)
    return table


def load_ground_truth(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of one ``gt/{id}.npz`` file (see :func:`write_dataset`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no ground-truth file; generate it with `gid synth`")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}
