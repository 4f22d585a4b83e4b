"""`gid render` on Ray Data: videos equal the in-process renderer's, follow the exact synthetic
motion, failures become rows, reruns skip finished work, and MLflow records the throughput."""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gid.datasets.clip_table import (clip_arrays, clip_table as rows_to_table, iter_clips, make_clip_row, read_clip_table,
                                synthetic_to_clips, write_shard)
from gid.datasets.video_io import read_video, write_video
from gid.datasets.render_outputs import video_name

FRAMES = 48


def psnr(a, b):
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def gid(*args):
    return subprocess.run([sys.executable, "-m", "gid.stages.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def clip_table(synth_small, tmp_path_factory):
    """The exact motion of 3 synthetic videos as a clip table, plus one row whose image is garbage."""
    data = synthetic_to_clips(synth_small, tmp_path_factory.mktemp("clips"))
    rows = read_clip_table(data).slice(0, 3)
    image, spectral, row = next(iter_clips(data))
    bad = make_clip_row("broken", 0, row["fps"], image, spectral, FRAMES, 1.0)
    bad["image"] = b"this is not a PNG"
    path = write_shard(pa.concat_tables([rows, rows_to_table([bad])]), data / "bulk" / "table.parquet")
    return data, path


@pytest.fixture(scope="module")
def first_run(ray_local, clip_table, tmp_path_factory):
    from gid.stages.bulk_render import RenderConfig, render_bulk

    _, table = clip_table
    out = tmp_path_factory.mktemp("render")
    cfg = RenderConfig(out=out, frames=FRAMES, spectral=True, batch_size=2, renderer="splat", progress=False, save_motion=True,
                       tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    return cfg, render_bulk([table], cfg)


@pytest.mark.ray
def test_videos_match_the_in_process_renderer(first_run, clip_table):
    """Each source's MP4 is the one-at-a-time render of its own motion (nothing swapped or lost). Frames
    can differ slightly between the Ray actor and this process (seen once in a clean-clone CI run: 41.8
    dB between the two H.264 encodes, cause not found; bit-identical in every other run), and H.264
    turns small differences into a few levels, so the checks leave room for that and still catch a swap."""
    from gid.pipeline.warping import render_video
    from gid.pipeline.spectral import spectral_to_trajectories

    cfg, summary = first_run
    _, table = clip_table
    assert (summary.rendered, summary.failed, summary.skipped) == (3, 1, 0)
    manifest = {r["source"]: r for r in pq.read_table(summary.manifest).to_pylist()}
    stored = clip_arrays(pq.read_table(table).slice(0, 3), ["image", "spectral"])  # row 3's image is garbage
    references = [render_video(stored["image"][i], spectral_to_trajectories(stored["spectral"][i], FRAMES))
                  for i in range(3)]
    for i in range(3):
        entry = manifest[f"{table}#{i}"]
        assert entry["status"] == "ok" and entry["frames"] == FRAMES and entry["seconds"] == pytest.approx(FRAMES / 30)
        np.testing.assert_array_equal(np.load((cfg.out / entry["video"]).with_suffix(".npy")), stored["spectral"][i])
        video = read_video(cfg.out / entry["video"])[0]
        write_video(cfg.out / "reference.mp4", references[i], fps=30)
        # the same frames encoded the same way: identical (inf) when the renders are bit-identical; the CI run
        # whose renders differed measured 41.8 dB, a swapped video ≈ 16 dB
        assert psnr(video, read_video(cfg.out / "reference.mp4")[0]) > 35
        # against the raw renders: its own within the codec's error (30.5 dB measured), every other ≥ 10 dB worse
        own = psnr(video, references[i])
        assert own > 25 and all(own > psnr(video, references[j]) + 10 for j in range(3) if j != i)


@pytest.mark.ray
def test_videos_follow_the_exact_motion(first_run, synth_small):
    """Against the real synthetic video, rendered frames beat a frozen frame 0 where things move."""
    cfg, summary = first_run
    synth = pq.read_table(synth_small / "manifest.parquet").to_pylist()
    for entry in pq.read_table(summary.manifest).to_pylist():
        if entry["status"] != "ok":
            continue
        index = int(entry["source"].rsplit("#", 1)[1])
        real = read_video(synth_small / synth[index]["video"])[0]
        fake = read_video(cfg.out / entry["video"])[0]
        moving = np.abs(real.astype(int) - real[:1].astype(int)).max(axis=-1) > 20
        assert moving.mean() > 0.01
        frozen = np.repeat(real[:1], len(real), axis=0)
        assert psnr(fake[moving], real[moving]) > psnr(frozen[moving], real[moving]) + 3


@pytest.mark.ray
def test_failures_are_rows_not_crashes(first_run, clip_table):
    cfg, summary = first_run
    _, table = clip_table
    errors = pq.read_table(list((cfg.out / "errors").glob("part-*.parquet"))).to_pylist()
    assert [e["source"] for e in errors] == [f"{table}#3"]
    assert errors[0]["stage"] == "read" and "row 3: column 'image' cannot be read as an image" in errors[0]["error"]
    manifest = {r["source"]: r for r in pq.read_table(summary.manifest).to_pylist()}
    assert manifest[f"{table}#3"]["status"] == "error" and manifest[f"{table}#3"]["video"] == ""


@pytest.mark.ray
def test_rerun_skips_done_items_and_redoes_missing_ones(first_run, clip_table):
    from gid.stages.bulk_render import render_bulk

    cfg, summary = first_run
    _, table = clip_table
    again = render_bulk([table], cfg)
    assert (again.rendered, again.failed, again.skipped) == (0, 1, 3)  # the broken row is retried
    manifest = {r["source"]: r for r in pq.read_table(summary.manifest).to_pylist()}
    (cfg.out / manifest[f"{table}#1"]["video"]).unlink()
    third = render_bulk([table], cfg)
    assert (third.rendered, third.failed, third.skipped) == (1, 1, 2)
    assert (cfg.out / manifest[f"{table}#1"]["video"]).is_file()


@pytest.mark.ray
def test_mlflow_run_records_throughput(first_run):
    import mlflow

    cfg, summary = first_run
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("gid-render").experiment_id],
                              filter_string=f"tags.mlflow.runName = 'render-{summary.run_id}'")
    metrics = runs[0].data.metrics
    assert metrics["videos"] == 3 and metrics["failed"] == 1
    assert metrics["videos_per_s"] == pytest.approx(3 / metrics["wall_s"])
    assert metrics["frames_per_s"] == pytest.approx(3 * FRAMES / metrics["wall_s"])


@pytest.mark.parametrize("args,message", [
    (["{tmp}/none.png", "--out", "{tmp}/o", "--spectral"], "no such file or folder"),
    (["{tmp}/photo.png", "--out", "{tmp}/o"], "--model is required"),
    (["{tmp}/photo.png", "--out", "{tmp}/o", "--model", "{tmp}"], "not a model bundle"),
    (["{tmp}/photo.png", "--out", "{tmp}/o", "--spectral"], "give Parquet files"),
    (["{tmp}/plain.parquet", "--out", "{tmp}/o", "--spectral"], "lacks column(s) image, spectral, num_freqs"),
    (["{tmp}/empty", "--out", "{tmp}/o", "--spectral"], "no images"),
    (["{tmp}/plain.parquet", "--out", "{tmp}/o", "--spectral", "--loop"], "cannot be combined"),
    (["{tmp}/plain.parquet", "--out", "{tmp}/o", "--spectral", "--batch-size", "0"], "--batch-size"),
])
def test_bad_arguments_give_one_line_errors(tmp_path, args, message):
    import pyarrow as pa

    (tmp_path / "photo.png").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    pq.write_table(pa.table({"x": [1]}), tmp_path / "plain.parquet")
    out = gid("render", *[a.format(tmp=tmp_path) for a in args])
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr


def test_stored_motion_keeps_its_amplitude_at_another_length(clip_table):
    """irfft divides by T (§4.1): rendering a T-frame clip's volume over 2T frames doubles S."""
    from gid.pipeline.spectral import spectral_to_trajectories
    from gid.datasets.render_inputs import collect_inputs, read_photos

    _, table = clip_table
    items = collect_inputs([table], spectral=True)[:1]
    _, motion, _ = read_photos([i["path"] for i in items], [i["row"] for i in items], "image", True, 512,
                               num_frames=2 * FRAMES)
    spec = motion[0]
    stored = clip_arrays(pq.read_table(table, columns=["spectral"]).slice(0, 1))["spectral"][0]
    np.testing.assert_allclose(spec, 2 * stored, rtol=1e-6)
    short, long = spectral_to_trajectories(stored, FRAMES), spectral_to_trajectories(spec, 2 * FRAMES)
    assert np.abs(long).max() == pytest.approx(np.abs(short).max(), rel=0.05)


def test_video_names_are_unique_per_source():

    names = {video_name(s, "x") for s in ["a/x.png", "b/x.png", "t.parquet#0", "t.parquet#1", "u/t.parquet#0"]}
    assert len(names) == 5 and all(n.startswith("videos/x-") and n.endswith(".mp4") for n in names)


def test_clip_table_rows_are_named_after_their_video(clip_table):
    """`gid eval --gt` matches a video to its true motion by the id its name starts with."""
    from gid.datasets.ground_truth import match_id
    from gid.datasets.render_inputs import collect_inputs

    _, table = clip_table
    items = collect_inputs([table], spectral=True)
    assert [i["name"] for i in items] == ["synth_s7_00000-0", "synth_s7_00001-0", "synth_s7_00002-0", "broken-0"]
    ids = ["synth_s7_00000", "synth_s7_00001", "synth_s7_00002", "synth_s7_00003"]
    assert [match_id(Path(video_name(i["source"], i["name"])).stem, ids) for i in items[:3]] == ids[:3]
