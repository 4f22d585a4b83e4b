"""`gid eval` end to end on synthetic ground truth: motion metrics without weights, net metrics with random weights."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from gid.datasets.ground_truth import ground_truth_index, match_id
from gid.datasets.video_io import list_videos
from gid.pipeline.video_evaluation import EvalConfig, center_crop, distribution_metrics
from gid.stages.evaluate import evaluate, evaluate_videos


@pytest.fixture(scope="module")
def static_fake(synth_small, tmp_path_factory):
    """A generator that predicts no motion: frame 0 of each real video held for all its frames."""
    from gid.datasets.video_io import read_video, write_video

    out = tmp_path_factory.mktemp("static_fake")
    for path in list_videos(synth_small, "--real"):
        frames, fps = read_video(path)
        write_video(out / f"{path.stem}-static.mp4", np.repeat(frames[:1], len(frames), axis=0), fps)
    return out


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """Randomly initialised InceptionV3 (75 px input) and I3D (32 px, 5 classes), saved like real weights."""
    from gid.pipeline.feature_nets import I3DFeatures, InceptionV3Features

    out = tmp_path_factory.mktemp("weights")
    gen = torch.Generator().manual_seed(0)
    for name, model in (("inception", InceptionV3Features(input_size=75)),
                        ("i3d", I3DFeatures(num_classes=5, input_size=32))):
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Conv3d)):  # He init: features do not vanish
                with torch.no_grad():
                    module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (2 / module.weight[0].numel()) ** 0.5)
        model.save_pretrained(out / name)
    return out


def test_match_id_and_center_crop():
    ids = ["synth_s0_00001", "synth_s0_000011", "img"]
    assert match_id("synth_s0_00001", ids) == "synth_s0_00001"
    assert match_id("synth_s0_00001-ab12cd", ids) == "synth_s0_00001"
    assert match_id("synth_s0_000011_loop-ff", ids) == "synth_s0_000011"
    assert match_id("image-3", ids) is None
    frames = np.random.default_rng(0).integers(0, 255, (2, 160, 256, 3), dtype=np.uint8)
    crop = center_crop(frames, 256, 128)
    assert crop.shape == (2, 128, 256, 3) and np.array_equal(crop, frames[:, 16:144])
    assert center_crop(frames[:, :100, :120], 256, 128).shape == (2, 128, 256, 3)  # upscaled to cover


def test_bad_inputs_are_named(tmp_path, synth_small):
    with pytest.raises(NotADirectoryError, match="--real"):
        list_videos(tmp_path / "missing", "--real")
    with pytest.raises(FileNotFoundError, match="--fake .*no videos"):
        list_videos(tmp_path, "--fake")
    with pytest.raises(FileNotFoundError, match="--gt"):
        ground_truth_index(tmp_path)
    with pytest.raises(FileNotFoundError, match="--inception"):
        EvalConfig(real=synth_small, fake=synth_small, inception=tmp_path / "nope")
    proc = subprocess.run([sys.executable, "-m", "gid.stages.cli", "eval", "--real", str(tmp_path / "missing"),
                           "--fake", str(synth_small), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("gid: error: ") and "(--real " in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_eval_without_weights_reports_motion_metrics(tmp_path, synth_small, static_fake):
    from typer.testing import CliRunner

    from gid.stages.cli import app

    out_same, out_static = tmp_path / "same", tmp_path / "static"
    result = CliRunner().invoke(app, ["eval", "--real", str(synth_small), "--fake", str(synth_small),
                                      "--gt", str(synth_small), "--out", str(out_same)])
    assert result.exit_code == 0, result.output
    assert "skipped: no --inception weights given" in result.output
    same = json.loads((out_same / "metrics.json").read_text())
    static = evaluate(EvalConfig(real=synth_small, fake=static_fake, gt=synth_small, out=out_static, progress=False))

    m = same["metrics"]
    assert m["motion_magnitude_w1_px"] == 0.0  # the same videos through the same flow
    assert m["motion_amplitude_error_px"] == pytest.approx(m["motion_amplitude_error_floor_px"])
    assert m["motion_amplitude_error_videos"] == 4
    assert set(same["skipped"]) == {"fid", "kid_x100", "sliding_fid", "fvd", "fvd32", "dtfvd", "dtfvd32", "sliding_dtfvd"}
    assert {p.name for p in out_same.glob("*.png")} == {"motion_magnitude.png", "amplitude_spectra.png"}
    assert len(same["per_frequency"]["true_amplitude_px"]) == 16

    s = static["metrics"]
    # no motion at all: the amplitude error is the whole true amplitude, far above the flow's floor
    truth = np.asarray(static["per_frequency"]["true_amplitude_px"])[1:].mean()
    assert s["motion_amplitude_error_px"] == pytest.approx(truth, rel=0.05)
    assert s["motion_magnitude_mean_fake_px"] < 0.01 < s["motion_magnitude_mean_real_px"]
    assert s["motion_magnitude_w1_px"] > 0.5 * s["motion_magnitude_mean_real_px"]
    assert s["loop_seam_fake_px"] < 0.01 < s["loop_seam_real_px"]
    assert np.isnan(s["frame_seam_ratio_fake"])  # a video without any change has no frame step to compare with


def test_spectral_npy_ground_truth_equals_synth_folder(tmp_path, synth_small):
    from gid.datasets.synthetic import load_ground_truth

    npy = tmp_path / "spectra"
    npy.mkdir()
    for key, path in ground_truth_index(synth_small).items():
        np.save(npy / f"{key}.npy", load_ground_truth(path)["spectral"])
    report = evaluate(EvalConfig(real=synth_small, fake=synth_small, gt=npy, out=tmp_path / "o", progress=False))
    reference = evaluate(EvalConfig(real=synth_small, fake=synth_small, gt=synth_small, out=tmp_path / "r", progress=False))
    assert report["metrics"]["motion_amplitude_error_px"] == pytest.approx(reference["metrics"]["motion_amplitude_error_px"])


def test_predicted_spectral_beside_a_video_replaces_its_flow(tmp_path, synth_small):
    import shutil

    from gid.datasets.synthetic import load_ground_truth

    fake = tmp_path / "fake"
    fake.mkdir()
    for key, path in ground_truth_index(synth_small).items():
        shutil.copy(synth_small / "videos" / f"{key}.mp4", fake / f"{key}-render.mp4")
        np.save(fake / f"{key}-render.npy", 1.5 * load_ground_truth(path)["spectral"])
    report = evaluate(EvalConfig(real=synth_small, fake=fake, gt=synth_small, out=tmp_path / "o", progress=False))
    truth = np.asarray(report["per_frequency"]["true_amplitude_px"])
    # |1.5·a − a| = 0.5·a at every pixel and frequency, with no flow error at all
    assert report["metrics"]["motion_amplitude_error_px"] == pytest.approx(0.5 * truth[1:].mean(), rel=1e-5)
    assert report["per_frequency"]["fake_motion_source"].startswith("predicted spectral volumes")
    # motion FD: the Fréchet distance of per-video descriptors over the truth's moving pixels
    from gid.pipeline.motion_metrics import amplitude_px, motion_fd, moving_mask

    gt = [load_ground_truth(path) for path in ground_truth_index(synth_small).values()]
    amp = np.stack([amplitude_px(g["spectral"], len(g["trajectories"])) for g in gt])
    assert report["metrics"]["motion_fd"] == pytest.approx(motion_fd(1.5 * amp, amp, moving_mask(amp)), rel=1e-6)
    assert report["metrics"]["motion_fd"] > 0.1


def test_every_net_metric_with_random_weights(synth_small, static_fake, tiny_weights):
    cfg = EvalConfig(real=synth_small, fake=static_fake, inception=tiny_weights / "inception",
                     i3d=tiny_weights / "i3d", dt_i3d=tiny_weights / "i3d", kid_subsets=10, progress=False,
                     crop_width=64, crop_height=48, frame_stride=4, max_frames=32)
    real, fake = evaluate_videos(list_videos(synth_small, "--real"), list_videos(static_fake, "--fake"), cfg, None)
    assert real[0]["feat_inception"].shape == (8, 2048) and real[0]["feat_i3d16"].shape == (2, 5)
    assert real[0]["feat_i3d32"].shape == (1, 5)
    m, curves, skipped = distribution_metrics(cfg, real, fake)
    assert skipped == {}
    for name in ("fid", "fvd", "fvd32", "dtfvd", "dtfvd32"):
        assert np.isfinite(m[name]) and m[name] > 0, name
    assert np.isfinite(m["kid_x100"])  # unbiased MMD²: may be slightly negative for close sets
    assert m["fvd"] == m["dtfvd"]  # the same net given twice
    assert curves["sliding_fid"]["start_frame"] == [0]  # 32 frames hold one 30-frame window
    assert curves["sliding_dtfvd"]["start_frame"] == [0, 16]
    # identical sets: every Fréchet distance vanishes
    same, curves, _ = distribution_metrics(cfg, real, real)
    for name in ("fid", "fvd", "fvd32", "dtfvd", "dtfvd32"):
        assert same[name] == pytest.approx(0.0, abs=1e-6 * max(m[name], 1.0)), name
    assert np.allclose(curves["sliding_fid"]["value"], 0.0, atol=1e-6 * m["fid"])


def test_eval_with_weights_writes_curves_and_says_what_was_skipped(tmp_path, synth_small, static_fake, tiny_weights):
    report = evaluate(EvalConfig(real=synth_small, fake=static_fake, out=tmp_path, inception=tiny_weights / "inception",
                                 dt_i3d=tiny_weights / "i3d", kid_subsets=10, progress=False, crop_width=64,
                                 crop_height=48, frame_stride=4, max_frames=20))
    assert {"fid", "kid_x100", "dtfvd"} <= set(report["metrics"])
    skipped = report["skipped"]
    assert skipped["dtfvd32"] == "some videos are shorter than 32 frames"
    assert skipped["fvd"] == skipped["fvd32"] == "no --i3d weights given"
    assert "fewer than the window of 7" in skipped["sliding_fid"]  # 20 frames, every 4th: 5 steps < 30 / 4
    assert report["curves"]["sliding_dtfvd"]["start_frame"] == [0]
    assert (tmp_path / report["plots"]["sliding_windows"]).is_file()
    assert json.loads((tmp_path / "metrics.json").read_text())["skipped"] == skipped


@pytest.mark.ray
def test_ray_data_records_match_in_process(ray_local, synth_small, tiny_weights):
    paths = list_videos(synth_small, "--real")
    gt_index = ground_truth_index(synth_small)
    local = EvalConfig(real=synth_small, fake=synth_small, inception=tiny_weights / "inception", max_frames=6,
                       progress=False)
    on_ray = EvalConfig(real=synth_small, fake=synth_small, inception=tiny_weights / "inception", max_frames=6,
                        progress=False, ray_min_videos=1)
    expected = evaluate_videos(paths[:1], paths[1:2], local, gt_index)
    got = evaluate_videos(paths[:1], paths[1:2], on_ray, gt_index)
    for a, b in zip(sum(expected, []), sum(got, [])):
        assert set(a) == set(b)
        np.testing.assert_allclose(b["feat_inception"], a["feat_inception"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b["magnitude"], a["magnitude"], rtol=1e-6)
        assert str(b["problem"]) == str(a["problem"])  # 6 frames, its ground truth 48


def test_mlflow_logging(tmp_path, synth_small):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    report = evaluate(EvalConfig(real=synth_small, fake=synth_small, out=tmp_path / "o", mlflow_uri=uri,
                                 experiment="eval-test", progress=False, max_frames=24))
    run = mlflow.MlflowClient(uri).get_run(report["mlflow_run_id"])
    assert run.data.metrics["motion_magnitude_w1_px"] == 0.0
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["mlflow_run_id"] == report["mlflow_run_id"]
