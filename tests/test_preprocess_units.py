"""Preprocessing pieces without Ray: video reader, flow methods, quality filters, per-clip motion."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from preprocess_corpus import encode

from gid.datasets.clip_stream import ClipSpec, VideoError, iter_clips, iter_frames
from gid.pipeline.clip_motion import clip_motion
from gid.pipeline.flow import flow_methods, make_flow
from gid.pipeline.clip_filters import QualityConfig, assess
from gid.pipeline.spectral import trajectories_to_spectral


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random RGB texture ``(H, W, 3)`` uint8 (features at several scales, good for flow)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((height, width, 3), np.float32)
    for scale, weight in ((3, 0.4), (8, 0.4), (24, 0.2)):
        noise = rng.standard_normal((height // scale + 2, width // scale + 2, 3)).astype(np.float32)
        out += weight * cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(128 + 50 * out, 0, 255).astype(np.uint8)


def translate(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Frame whose content moved by (dx, dy): pixel p of ``image`` appears at p + (dx, dy)."""
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def index_frames(count: int, height: int = 32, width: int = 48) -> np.ndarray:
    """Grey frames whose brightness encodes their index: frame i has value 3·i."""
    return np.repeat((3 * np.arange(count, dtype=np.uint8))[:, None, None, None], 3, axis=3) * np.ones(
        (1, height, width, 3), np.uint8)


# ---------------------------------------------------------------- video reader

@pytest.mark.parametrize("source_fps", [60, 20, 30])
def test_resampling_picks_the_nearest_source_frame(tmp_path, source_fps):
    path = encode(tmp_path / "index.mp4", index_frames(60), fps=source_fps)
    spec = ClipSpec(num_frames=2, width=48, height=32, fps=30)
    got = np.array([f[..., 0].mean() for f in iter_frames(str(path), spec)]) / 3
    duration = 60 / source_fps
    times = np.arange(int(np.ceil(duration * 30 - 1e-9))) / 30
    expected = np.round(times * source_fps - 1e-9).clip(0, 59)  # nearest source frame, no ties possible here
    assert len(got) == len(expected)
    np.testing.assert_allclose(got, expected, atol=0.34)  # lossless H.264 of flat grey; rounding ≤ 1 level


def test_clip_starts_follow_the_stride_and_memory_holds_one_clip(tmp_path):
    path = encode(tmp_path / "index.mp4", index_frames(25))
    spec = ClipSpec(num_frames=10, stride=5, width=48, height=32)
    clips = list(iter_clips(str(path), spec))
    assert [s for s, _ in clips] == [0, 5, 10, 15]
    for start, frames in clips:
        assert frames.shape == (10, 32, 48, 3)
        np.testing.assert_allclose(frames[:, 0, 0, 0] / 3, np.arange(start, start + 10), atol=0.34)


def test_rotation_metadata_makes_frames_upright(tmp_path):
    upright = texture(64, 48)  # H=64, W=48 as displayed
    stored = np.ascontiguousarray(np.rot90(upright, -1))  # the sensor's (48, 64) frame
    path = encode(tmp_path / "portrait.mp4", np.repeat(stored[None], 4, axis=0), rotation=90, pix_fmt="yuv444p")
    frame = next(iter_frames(str(path), ClipSpec(width=48, height=64)))
    assert frame.shape == (64, 48, 3)
    assert np.abs(frame.astype(int) - upright).mean() < 2.0
    ignoring_rotation = cv2.resize(stored, (48, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(ignoring_rotation.astype(int) - upright).mean() > 10  # the test would catch a reader that ignores it


@pytest.mark.parametrize("codec,pix_fmt,suffix", [("ffv1", "yuv444p10le", ".mkv"), ("ffv1", "bgr0", ".mkv"),
                                                  ("libx264", "yuv444p10le", ".mp4"), ("png", "rgb48be", ".mov")])
def test_unusual_pixel_formats_decode_to_rgb(tmp_path, codec, pix_fmt, suffix):
    image = texture(32, 48)
    path = encode(tmp_path / f"odd{suffix}", np.repeat(image[None], 3, axis=0), codec=codec, pix_fmt=pix_fmt)
    frame = next(iter_frames(str(path), ClipSpec(width=48, height=32)))
    assert frame.dtype == np.uint8 and frame.shape == (32, 48, 3)
    assert np.abs(frame.astype(int) - image).mean() < 1.5


@pytest.mark.parametrize("size,rotation", [((50, 50), 0), ((200, 100), 0), ((50, 50), 90), ((25, 50), 270)])
def test_frames_are_scaled_to_cover_and_centre_cropped(tmp_path, size, rotation):
    image = np.zeros((50, 100, 3), np.uint8)
    image[:, 25:75] = 255  # a central square on black
    stored = np.ascontiguousarray(np.rot90(image, -rotation // 90))
    path = encode(tmp_path / "wide.mp4", np.repeat(stored[None], 2, axis=0), rotation=rotation, pix_fmt="yuv444p")
    width, height = size
    frame = next(iter_frames(str(path), ClipSpec(width=width, height=height)))
    assert frame.shape == (height, width, 3)
    scale = max(width / 100, height / 50)
    expected = cv2.resize(image, (round(100 * scale), round(50 * scale)), interpolation=cv2.INTER_AREA)
    top, left = (expected.shape[0] - height) // 2, (expected.shape[1] - width) // 2
    expected = expected[top:top + height, left:left + width]
    assert np.abs(frame.astype(int) - expected).mean() < 4
    if width / height <= 1:
        assert frame[2:-2, 2:-2].min() > 240  # only the white centre survives the crop


def test_start_and_end_seconds_limit_the_clips_to_a_part_of_the_video(tmp_path):
    path = encode(tmp_path / "idx.mp4", index_frames(60))
    spec = ClipSpec(num_frames=10, stride=5, width=48, height=32)
    whole = dict(iter_clips(str(path), spec))
    part = dict(iter_clips(str(path), spec, start=0.5, end=1.5))  # frames 15 … 44 at 30 fps
    assert list(part) == [15, 20, 25, 30, 35] and list(whole)[:2] == [0, 5]
    for first, frames in part.items():
        np.testing.assert_allclose(frames[:, 0, 0, 0] / 3, np.arange(first, first + 10), atol=0.34)
    with pytest.raises(VideoError, match="too short between 1.8 s and 2 s"):
        list(iter_clips(str(path), spec, start=1.8, end=2.0))


def test_too_short_and_missing_videos_raise_video_errors(tmp_path):
    path = encode(tmp_path / "short.mp4", index_frames(8))
    with pytest.raises(VideoError, match="too short: 8 frame") as err:
        list(iter_clips(str(path), ClipSpec(num_frames=10, width=48, height=32)))
    assert err.value.stage == "decode"
    with pytest.raises(VideoError, match="no such file") as err:
        list(iter_clips(str(tmp_path / "nope.mp4"), ClipSpec()))
    assert err.value.stage == "open"


def test_pyarrow_uri_sources_read_like_paths(tmp_path):
    path = encode(tmp_path / "index.mp4", index_frames(12))
    spec = ClipSpec(num_frames=12, width=48, height=32)
    (_, local), = iter_clips(str(path), spec)
    (_, remote), = iter_clips(path.as_uri(), spec)
    np.testing.assert_array_equal(local, remote)


# ---------------------------------------------------------------- flow

@pytest.mark.parametrize("name,tolerance", [("dis", 0.15), ("dis-medium", 0.1), ("farneback", 0.1)])
def test_flow_recovers_a_subpixel_translation(name, tolerance):
    image = texture(80, 128)
    dx, dy = 2.3, -1.6
    flow = make_flow(name).pairs(image[None], translate(image, dx, dy)[None])[0]
    interior = flow[:, 12:-12, 12:-12]
    assert np.abs(interior[0] - dx).mean() < tolerance
    assert np.abs(interior[1] - dy).mean() < tolerance


def test_flow_registry_names_and_errors():
    assert {"dis", "dis-medium", "farneback"} <= set(flow_methods())
    with pytest.raises(ValueError, match="--flow 'raft'"):
        make_flow("raft")


def test_spectral_volume_of_an_oscillating_translation_matches_the_analytic_one():
    """Uniform motion x(t) = A·sin(2π·k0·t/T) + B·cos(2π·k1·t/T) − B: the volume is known in closed form."""
    image = texture(80, 128, seed=1)
    num_frames, k0, k1, a, b = 32, 2, 5, 2.5, 1.0
    t = np.arange(num_frames)
    xs = a * np.sin(2 * np.pi * k0 * t / num_frames) + b * np.cos(2 * np.pi * k1 * t / num_frames) - b
    ys = 0.5 * a * np.sin(2 * np.pi * k0 * t / num_frames)
    frames = np.stack([translate(image, x, y) for x, y in zip(xs, ys)])
    motion = clip_motion(frames, make_flow("dis-medium"), num_freqs=8)
    assert motion.quality.reason is None
    exact = np.zeros((num_frames, 2, 80, 128), np.float32)
    exact[:, 0], exact[:, 1] = xs[:, None, None], ys[:, None, None]
    expected = trajectories_to_spectral(exact, 8)
    got = motion.spectral[:, :, 16:-16, 16:-16].mean(axis=(2, 3))
    # the peaks: Im Sx at k0 = −A·T/2, Re Sx at k1 = B·T/2, Im Sy at k0 = −A·T/4
    np.testing.assert_allclose(expected[k0, 1, 0, 0], -a * num_frames / 2, rtol=1e-4)
    np.testing.assert_allclose(got, expected[:, :, 0, 0], atol=0.05 * a * num_frames / 2)


# ---------------------------------------------------------------- quality

def _clip_of(positions, image):
    return np.stack([translate(image, x, y) for x, y in positions])


def test_quality_keeps_moderate_motion_and_names_each_failure():
    image = texture(64, 96, seed=2)
    flow = make_flow("dis")
    wave = [(2 * np.sin(t / 3), 0.0) for t in range(16)]

    def verdict(frames, **config):
        return assess(frames, flow.trajectories(frames), flow, QualityConfig(**config)).reason

    moving = _clip_of(wave, image)
    assert verdict(moving) is None
    assert verdict(np.repeat(image[None], 16, axis=0)) == "static"
    cut = moving.copy()
    cut[9:] = 255 - _clip_of(wave[9:], texture(64, 96, seed=3))  # another scene
    assert verdict(cut) == "scene cut"
    assert verdict(moving, max_motion=0.005) == "large motion"  # 2 px > 0.5 % of the 115 px diagonal
    noise = np.random.default_rng(4).integers(0, 256, (16, 64, 96, 3), dtype=np.uint8)
    assert verdict(noise, cut_min=1e9) in ("inconsistent flow", "photometric")
    assert verdict(moving, max_photometric=0.0) == "photometric"


# ---------------------------------------------------------------- inputs

def test_inputs_expand_from_folders_globs_lists_and_uris(tmp_path):
    from gid.stages.preprocess import expand_inputs

    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("a/x.mp4", "a/deep/y.MOV", "a/notes.txt", "b.mkv"):
        (tmp_path / name).write_bytes(b"")
    listing = tmp_path / "list.txt"
    listing.write_text("# videos\nb.mkv\n\n/elsewhere/missing.mp4\n")
    assert expand_inputs([str(tmp_path / "a")]) == [str(tmp_path / "a/deep/y.MOV"), str(tmp_path / "a/x.mp4")]
    assert expand_inputs([str(tmp_path / "a" / "**" / "*.mp4")]) == [str(tmp_path / "a/x.mp4")]
    assert expand_inputs([str(listing), str(tmp_path / "b.mkv")]) == [str(tmp_path / "b.mkv"), "/elsewhere/missing.mp4"]
    assert expand_inputs([(tmp_path / "a").as_uri()]) == [(tmp_path / "a/deep/y.MOV").as_uri(), (tmp_path / "a/x.mp4").as_uri()]
    unmatched = str(tmp_path / "a" / "deep" / "*.mp4")
    assert expand_inputs([unmatched]) == [unmatched]  # kept: it becomes an error record naming the pattern


def test_a_torchscript_flow_network_plugs_in_from_a_local_file(tmp_path):
    """A scripted 'network' with a known answer (flow = 255·(target − source) in R, G) checks layout and scaling."""
    import torch

    class Difference(torch.nn.Module):
        def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return 255.0 * (target - source)[:, :2]

    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(Difference()), str(path))
    frames = np.random.default_rng(5).integers(0, 256, (7, 12, 20, 3), dtype=np.uint8)
    flow = make_flow(f"torchscript:{path}", batch_size=4)
    traj = flow.trajectories(frames)
    expected = (frames.astype(np.float32) - frames[0]).transpose(0, 3, 1, 2)[:, :2]
    np.testing.assert_allclose(traj, expected, atol=1e-3)
    with pytest.raises(FileNotFoundError, match="torch.jit.save"):
        make_flow(f"torchscript:{tmp_path / 'none.pt'}")


def test_the_store_drops_results_a_retried_task_delivers_twice(tmp_path):
    """The stages without Ray; results repeated as re-executed Ray tasks would repeat them, and a
    second execution of the same source rewriting its shards (same names, same bytes) before commit."""
    import math

    from tqdm import tqdm

    from gid.datasets.clip_table import read_clip_table
    from gid.datasets.clip_table_writer import ClipStore, SourceResult, source_number
    from gid.stages.preprocess import PreprocessConfig, SourceStage, Summary, _collect, process_source

    image = texture(64, 96, seed=6)
    video = str(encode(tmp_path / "wave.mp4", _clip_of([(2 * np.sin(t / 3), np.cos(t / 4)) for t in range(40)], image)))
    cfg = PreprocessConfig(num_frames=16, stride=8, width=96, height=64, num_freqs=4)
    out = tmp_path / "out"
    store, summary = ClipStore(out, cfg.settings()), Summary()
    flow = make_flow("dis")
    first = process_source(video, video, math.nan, math.nan, cfg, flow, out, rows_per_shard=3).to_row()
    assert sorted(p.name[17:] for p in (out / ".pending").iterdir()) == ["00000.parquet", "00001.parquet"]
    _collect(first, store, summary, tqdm(disable=True))
    again = process_source(video, video, math.nan, math.nan, cfg, flow, out, rows_per_shard=3).to_row()
    for row in (first, again, first):  # duplicates before and after the commit
        _collect(row, store, summary, tqdm(disable=True))
    store.commit()
    _collect(again, store, summary, tqdm(disable=True))
    store.commit()
    table = read_clip_table(out, columns=["start_frame"])
    assert sorted(table["start_frame"].to_pylist()) == [0, 8, 16, 24]
    assert (summary.videos_ok, summary.clips_written) == (1, 4)
    assert store.done_log()["key"].to_pylist() == [video]
    # A rerun's workers get the done ids and skip the source without opening it.
    rerun = ClipStore(out, cfg.settings())
    stage = SourceStage(cfg, str(out), rerun.done_ids())
    result = stage({"key": [video, "missing.mp4"], "source": [video, "missing.mp4"], "start": [math.nan] * 2,
                    "end": [math.nan] * 2})
    assert list(result["status"]) == ["skipped", "failed"]
    # A failed source is in the done log, so a rerun skips it, unless told to retry the failed ones.
    rerun.record(SourceResult.from_row({name: value[1] for name, value in result.items()}))
    rerun.commit()
    failed = np.uint64(source_number("missing.mp4"))
    assert failed in ClipStore(out, cfg.settings()).done_ids()
    retry = ClipStore(out, cfg.settings()).done_ids(retry_failed=True)
    assert failed not in retry and np.uint64(source_number(video)) in retry

