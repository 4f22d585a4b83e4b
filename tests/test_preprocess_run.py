"""`gid preprocess` end to end on local Ray: ground truth, broken files, readers, kill-and-resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from preprocess_corpus import broken_corpus, encode
from typer.testing import CliRunner

from gid.datasets.clip_table_writer import ClipStore
from gid.datasets.clip_table import read_clip_arrays, read_clip_table
from gid.datasets.synthetic import SynthConfig, load_ground_truth, write_dataset
from gid.datasets.video_io import read_video
from gid.pipeline.normalize import load_scales, normalize
from gid.pipeline.spectral import spectral_to_trajectories, trajectories_to_spectral
from gid.stages.preprocess import PreprocessConfig

pytestmark = pytest.mark.ray

ARGS = ["--frames", "48", "--stride", "12", "--size", "128x80", "--quiet"]
NUM_FRAMES, NUM_FREQS = 48, 16
# Trajectory endpoint error of the whole command (DIS fast, H.264 crf 17, 128×80, T = 48, K = 16)
# against the exact motion, on visible non-occluded pixels; measured 0.22–0.35 px mean per video.
EPE_BOUND = 0.5
# Raw flow of one frame (no band limit): per-frame mean endpoint error measured 0.51–0.71 px at worst.
FRAME_EPE_BOUND = 1.0


def run_cli(*args: str):
    from gid.stages.cli import app

    result = CliRunner().invoke(app, ["preprocess", *args])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.output


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Synthetic videos with exact motion, odd-but-usable copies of two of them, and broken files."""
    root = tmp_path_factory.mktemp("preprocess")
    write_dataset(root / "synth", 3, SynthConfig(num_frames=60, width=128, height=80), seed=11, progress=False)
    videos = sorted((root / "synth" / "videos").glob("*.mp4"))
    frames0, _ = read_video(videos[0])
    frames1, _ = read_video(videos[1])
    (root / "odd").mkdir()
    # A phone-style portrait file: sensor frames stored sideways, display matrix turns them upright.
    encode(root / "odd" / "rotated.mp4", np.ascontiguousarray(np.rot90(frames0, -1, axes=(1, 2))), rotation=90,
           pix_fmt="yuv444p")
    encode(root / "odd" / "tenbit.mkv", frames1, codec="ffv1", pix_fmt="yuv444p10le")
    broken = broken_corpus(root / "broken", videos[0])
    truth = {str(v): i for i, v in enumerate(videos)}
    truth[str(root / "odd" / "rotated.mp4")] = 0
    truth[str(root / "odd" / "tenbit.mkv")] = 1
    return {"root": root, "videos": videos, "broken": broken, "truth": truth}


@pytest.fixture(scope="module")
def processed(corpus, ray_local):
    out = corpus["root"] / "out"
    root = corpus["root"]
    output = run_cli(str(root / "synth" / "videos"), str(root / "odd"), str(root / "broken"),
                     str(corpus["broken"]["missing"]), "--out", str(out), "--target-frames", "3", *ARGS)
    return out, output


def exact_trajectories(corpus, source: str) -> tuple[np.ndarray, np.ndarray]:
    """The band-limited exact motion of a clip starting at frame 0, and its valid-pixel mask (T, H, W)."""
    gt = load_ground_truth(corpus["root"] / "synth" / "gt" / f"{corpus['videos'][corpus['truth'][source]].stem}.npz")
    traj = gt["trajectories"][:NUM_FRAMES]
    smooth = spectral_to_trajectories(trajectories_to_spectral(traj, NUM_FREQS), NUM_FRAMES)
    return traj, smooth, gt["visible"][:NUM_FRAMES] & gt["solid"][None]


def test_every_broken_file_gets_an_error_and_every_good_clip_is_written(corpus, processed):
    out, output = processed
    assert "videos: 5 ok, 8 failed" in output and "clips: 10 written, 0 filtered" in output
    errors = pq.read_table(out / "errors").to_pylist()
    assert sorted(e["source"] for e in errors) == sorted(str(p) for p in corpus["broken"].values())
    stages = {Path(e["source"]).stem: e["stage"] for e in errors}
    assert stages["too_short"] == stages["single_frame"] == "decode"
    assert stages["missing"] == stages["random"] == stages["audio_only"] == stages["absurd_resolution"] == "open"
    table = read_clip_table(out, columns=["clip_id", "source", "start_frame"]).to_pylist()
    assert sorted((r["source"], r["start_frame"]) for r in table) == sorted(
        (s, start) for s in corpus["truth"] for start in (0, 12))
    assert len({r["clip_id"] for r in table}) == len(table)
    log = pq.read_table(out / "done").to_pylist()
    assert sorted(m["status"] for m in log) == ["failed"] * 8 + ["ok"] * 5


def test_spectral_volumes_match_the_exact_motion(corpus, processed):
    out, _ = processed
    errors = []
    clips = read_clip_arrays(out, ["source", "start_frame", "spectral"])
    for source, start, spectral in zip(clips["source"], clips["start_frame"], clips["spectral"]):
        if start != 0:
            continue
        _, smooth, valid = exact_trajectories(corpus, source)
        estimated = spectral_to_trajectories(spectral, NUM_FRAMES)
        epe = np.sqrt(((estimated - smooth) ** 2).sum(axis=1))
        errors.append(float(epe[valid].mean()))
    print("trajectory endpoint error (px) per start-0 clip:", np.round(errors, 3))
    assert len(errors) == 5 and max(errors) < EPE_BOUND


def test_target_frames_hold_the_frames_and_their_flow(corpus, processed):
    out, _ = processed
    clips = read_clip_arrays(out, ["source", "start_frame", "target_t", "target_images", "target_flows"])
    for source, start, ts, images, flows in zip(*clips.values()):
        assert len(set(ts.tolist())) == 3 and ts.min() >= 1 and ts.max() < NUM_FRAMES
        assert images.shape == (3, 80, 128, 3) and flows.shape == (3, 2, 80, 128)
        if start == 0 and source in map(str, corpus["videos"]):
            frames, _ = read_video(source, max_frames=NUM_FRAMES)
            np.testing.assert_array_equal(images, frames[ts])
            traj, _, valid = exact_trajectories(corpus, source)
            for flow, t in zip(flows, ts):
                epe = np.sqrt(((flow - traj[t]) ** 2).sum(axis=0))
                assert epe[valid[t]].mean() < FRAME_EPE_BOUND


def test_scales_are_the_nonzero_95th_percentile_of_every_stored_value(processed):
    out, _ = processed
    values = np.abs(read_clip_arrays(out, ["spectral"])["spectral"])  # (N, K, 4, H, W)
    per_freq = np.moveaxis(values, 1, 0).reshape(NUM_FREQS, -1)
    expected = [np.percentile(v[v >= 1e-6], 95) for v in per_freq]
    np.testing.assert_allclose(load_scales(out / "freq_scales.json"), expected, rtol=0.012)  # sketch ε = 0.5 %


def test_readers_give_ray_and_torch_views_of_the_same_clips(processed):
    import torch

    from gid.datasets.clip_table import ClipDataset, iter_clips, read_clip_dataset

    out, _ = processed
    assert read_clip_dataset(out, columns=["clip_id"]).count() == 10
    scales = load_scales(out / "freq_scales.json")
    pairs = list(ClipDataset(out, normalized=True))
    reference = list(iter_clips(out))
    assert len(pairs) == len(reference) == 10
    for (image, spectral), (ref_image, ref_spectral, _) in zip(pairs, reference):
        assert image.shape == (3, 80, 128) and image.dtype == torch.float32
        np.testing.assert_allclose(image.numpy(), ref_image.transpose(2, 0, 1) / 255.0, atol=1e-6)
        np.testing.assert_allclose(spectral.numpy(), normalize(ref_spectral, scales.astype(np.float32)), atol=1e-5)
    halves = [list(ClipDataset(out, rank=r, world_size=2, shuffle=True, seed=3)) for r in (0, 1)]
    assert len(halves[0]) + len(halves[1]) == 10
    sums = sorted(float(s.sum()) for half in halves for _, s in half)
    assert np.allclose(sums, sorted(float(s.sum()) for _, s, _ in reference))


def _table(out: Path) -> dict[str, bytes]:
    rows = read_clip_table(out, columns=["clip_id", "spectral"]).to_pylist()
    assert len({r["clip_id"] for r in rows}) == len(rows), "duplicate clips"
    return {r["clip_id"]: r["spectral"] for r in rows}


def test_a_killed_run_resumes_to_the_rows_of_an_uninterrupted_run(corpus, ray_local, tmp_path):
    many = tmp_path / "many"
    many.mkdir()
    for i in range(8):
        (many / f"v{i}.mp4").symlink_to(corpus["videos"][i % 3])
    (many / "broken.mp4").write_bytes(b"not a video")
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    address = ray_local.get_runtime_context().gcs_address
    proc = subprocess.Popen([sys.executable, "-m", "gid.stages.cli", "preprocess", str(many), "--out", str(killed),
                             "--address", address, *ARGS], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    while not list((killed / "done").glob("[!.]*.parquet")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = pq.read_table(killed / "done").num_rows  # sources in the done log
    assert 1 <= done_at_kill < 9, "the run should be killed partway"

    output = run_cli(str(many), "--out", str(killed), *ARGS)
    assert f"{done_at_kill} already done (skipped)" in output
    run_cli(str(many), "--out", str(clean), *ARGS)
    resumed, uninterrupted = _table(killed), _table(clean)
    assert len(uninterrupted) == 16 and resumed == uninterrupted
    assert json.loads((killed / "freq_scales.json").read_text()) == json.loads((clean / "freq_scales.json").read_text())
    assert pq.read_table(killed / "errors").to_pylist() == pq.read_table(clean / "errors").to_pylist()
    assert not list((killed / ".pending").iterdir())

    before = {p: p.stat().st_mtime_ns for p in (killed / "clips").iterdir()}
    output = run_cli(str(many), "--out", str(killed), *ARGS)
    assert "9 already done (skipped)" in output and "clips: 0 written" in output
    assert {p: p.stat().st_mtime_ns for p in (killed / "clips").iterdir()} == before


def test_bad_arguments_are_one_line_errors(tmp_path):
    from gid.stages.preprocess import check_manifest, expand_inputs

    with pytest.raises(ValueError, match="--flow 'nope'"):
        PreprocessConfig(flow="nope")
    with pytest.raises(ValueError, match="--num-freqs"):
        PreprocessConfig(num_frames=10, num_freqs=16)
    with pytest.raises(ValueError, match="no videos found"):
        expand_inputs([str(tmp_path)])
    out = tmp_path / "out"
    ClipStore(out, PreprocessConfig().settings())
    with pytest.raises(ValueError, match="other settings.*num_frames: 150 → 100"):
        ClipStore(out, PreprocessConfig(num_frames=100).settings())
    result = subprocess.run([sys.executable, "-m", "gid.stages.cli", "preprocess", str(tmp_path), "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("gid: error: no videos found")
    import pyarrow as pa

    pq.write_table(pa.table({"path": ["a.mp4"]}), tmp_path / "m.parquet")
    with pytest.raises(ValueError, match="--manifest .*m.parquet: needs a string column 'source' \\(it has path\\)"):
        check_manifest(tmp_path / "m.parquet")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        check_manifest(tmp_path / "out" / "preprocess.json")


def test_a_manifest_streams_sources_and_parts_of_them(corpus, processed, tmp_path):
    """--manifest: the same clips as the listed run for whole files, only the clips inside [start, end)
    for a part, an error row for a missing file; rerun skips all of them."""
    import pyarrow as pa

    out, _ = processed
    video = str(corpus["videos"][0])
    manifest = tmp_path / "sources.parquet"
    pq.write_table(pa.table({"source": [video, video, str(tmp_path / "gone.mp4")],
                             "start": [None, 0.4, None], "end": [None, 2.0, None]},
                            schema=pa.schema([("source", pa.string()), ("start", pa.float64()), ("end", pa.float64())])),
                   manifest, row_group_size=1)
    listed = read_clip_table(out, columns=["clip_id", "spectral"]).to_pylist()
    output = run_cli("--manifest", str(manifest), "--out", str(tmp_path / "m"), "--target-frames", "3", *ARGS)
    assert "videos: 2 ok, 1 failed" in output and "clips: 3 written" in output
    got = read_clip_table(tmp_path / "m", columns=["clip_id", "source", "start_frame", "spectral"]).to_pylist()
    starts = sorted(r["start_frame"] for r in got)
    assert starts == [0, 12, 12]  # whole file: 0, 12; frames 12 … 59 of the part: 12 only
    whole = {r["clip_id"]: r["spectral"] for r in listed}
    assert all(whole[r["clip_id"]] == r["spectral"] for r in got)
    assert "3 already done (skipped)" in run_cli("--manifest", str(manifest), "--out", str(tmp_path / "m"),
                                                 "--target-frames", "3", *ARGS)
