"""`gid motion`, `gid loop` and interaction from a video, on footage with known motion.

The footage is made here: a real photo (scikit-learn's flower.jpg, CC BY 2.0) swayed by a known
oscillating field, with or without a handheld camera's translation (gid.datasets.swaying_photo),
encoded to H.264 and read back through the same PyAV decoding as `gid preprocess`.
"""

import numpy as np
import pytest

from gid.datasets.swaying_photo import SwayConfig, camera_path, swaying_video
from gid.datasets.video_io import read_video, write_video
from gid.pipeline.flow import make_flow
from gid.pipeline.spectral import trajectories_to_spectral

W, H, FPS = 128, 84, 30.0


def amplitudes(traj: np.ndarray, num_freqs: int) -> np.ndarray:
    """``(K,)`` mean amplitude in px (A_k = 2/T·|S_k|, METHOD.md) over the moving centre of the picture."""
    spec = trajectories_to_spectral(traj, num_freqs)
    amp = 2.0 / len(traj) * np.hypot(np.hypot(spec[:, 0], spec[:, 1]), np.hypot(spec[:, 2], spec[:, 3]))
    return amp[:, H // 3:2 * H // 3, W // 3:2 * W // 3].mean(axis=(1, 2))


def output_amplitudes(frames: np.ndarray, num_freqs: int = 16) -> np.ndarray:
    """The measured motion of rendered frames: flow from their frame 0 to every frame, then A_k.

    Measured with DIS medium: DIS fast reads sub-pixel motion at this size low by a factor that
    depends on the amplitude (2.31× for a doubled 0.4 px bin), which would bias the ratios.
    """
    return amplitudes(make_flow("dis-medium").trajectories(frames), num_freqs)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """150 frames (5 s) of swaying footage, on a tripod and handheld (4 px of camera translation)."""
    root = tmp_path_factory.mktemp("footage")
    out = {}
    for name, camera in (("tripod", 0.0), ("handheld", 4.0)):
        cfg = SwayConfig(num_frames=150, width=W, height=H, camera_px=camera)
        frames, truth = swaying_video(cfg)
        write_video(root / f"{name}.mp4", frames, FPS, crf=12)
        out[name] = (root / f"{name}.mp4", cfg, truth)
    return root, out


@pytest.fixture(scope="module")
def tripod_motion(clips):
    from gid.datasets.video_clip import read_clip
    from gid.pipeline.video_loop import video_motion

    path = clips[1]["tripod"][0]
    clip = read_clip(str(path), 150)
    return clip, video_motion(clip.frames, clip.fps, make_flow("dis"), 16)


def test_read_clip_keeps_the_aspect_ratio_and_frames(clips):
    from gid.datasets.video_clip import read_clip

    path, cfg, _ = clips[1]["tripod"]
    clip = read_clip(str(path), 40, start=1.0, max_side=64)
    assert clip.frames.shape == (40, 42, 64, 3) and clip.fps == FPS and clip.start == 1.0
    full, _ = read_video(path)
    small = read_clip(str(path), 10, start=1.0, max_side=W).frames
    assert np.abs(small.astype(int) - full[30:40]).mean() < 1.0, "frame 30 is 1 s in, not another"


def test_motion_writes_a_folder_that_animate_replays(clips, gid, tmp_path):
    import json

    path = clips[1]["tripod"][0]
    res = gid("motion", path, "--out", tmp_path / "m", "--frames", 60, "--num-freqs", 8)
    assert res.returncode == 0, res.stderr
    spectral = np.load(tmp_path / "m" / "spectral.npy")
    meta = json.loads((tmp_path / "m" / "motion.json").read_text())
    assert spectral.shape == (8, 4, H, W) and spectral.dtype == np.float32
    assert meta["T"] == 60 and meta["fps"] == FPS and meta["K"] == 8 and meta["size"] == [W, H]
    assert meta["flow"] == "dis" and meta["source"] == str(path) and meta["start"] == 0
    # `--spectral DIR` takes T = 60 from motion.json: 60 frames, not the default 150
    res = gid("animate", tmp_path / "m" / "frame0.png", "--spectral", tmp_path / "m", "--out", tmp_path / "a.mp4")
    assert res.returncode == 0, res.stderr
    frames, fps = read_video(tmp_path / "a.mp4")
    assert len(frames) == 60 and fps == FPS and frames.shape[1:3] == (H, W)


def test_loop_reproduces_the_clip_better_than_the_still_frame(tripod_motion):
    """The loop beats frame 0 held still by > 2.5 dB (3.5 dB measured; the clip's 4.5 Hz component is
    above the K = 16 bins of T = 150); frame 0 rendered with no motion (amplify 0) gains nothing. The
    loop must also beat itself played backwards (conjugated S, a sign slip in the transform) by
    0.4 dB: that variant keeps the mean displacement S_0 and scored 0.83 dB lower in trying."""
    from gid.pipeline.video_loop import fidelity, reference_frames, render_loop

    clip, motion = tripod_motion
    score = fidelity(render_loop(motion), reference_frames(clip.frames, motion))
    assert score.gain > 2.5, score
    broken = motion.spectral.copy()
    broken[:, 1::2] *= -1
    motion_broken = type(motion)(**{**motion.__dict__, "spectral": broken})
    assert fidelity(render_loop(motion_broken), clip.frames).psnr_loop < score.psnr_loop - 0.4


def test_band_keeps_only_its_frequencies(tripod_motion):
    """At T = 150, 30 fps the sway's 0.6, 2.2 Hz components are bins 3 and 11. The band 1.5:3 Hz keeps
    bin 11 and must remove bin 3 from the output's measured flow (< 15 % of the plain loop's; 0.5 %
    measured); without the band (the broken variant: band ignored) bin 3 stays at 100 %."""
    from gid.pipeline.video_loop import render_loop

    _, motion = tripod_motion
    plain = output_amplitudes(render_loop(motion))
    banded = output_amplitudes(render_loop(motion, band=(1.5, 3.0)))
    assert plain[3] > 0.3 and plain[11] > 0.08, plain
    assert banded[3] < 0.15 * plain[3], (banded, plain)
    assert 0.6 < banded[11] / plain[11] < 1.4, (banded, plain)


def test_amplify_zero_freezes_and_two_doubles(tripod_motion):
    from gid.pipeline.video_loop import render_loop

    _, motion = tripod_motion
    frozen = render_loop(motion, amplify=0.0)
    assert np.abs(frozen.astype(int) - motion.frame0).max() <= 1, "amplify 0 must show frame 0 on every frame"
    one, two = (output_amplitudes(render_loop(motion, amplify=a))[1:].sum() for a in (1.0, 2.0))
    assert 2 * 0.85 < two / one < 2 * 1.15, (one, two)


def test_camera_fit_recovers_the_handheld_translation(clips):
    """The robust affine fit finds the camera's translation to 0.3 px (0.18 px measured; DIS medium flow,
    as DIS fast alone is 0.4 px off at the corners of this 128×84 clip); a plain least-squares fit over
    all pixels (tried) is pulled by the swaying flower by > 0.5 px and fails."""
    from gid.pipeline.camera_motion import camera_motion, remove_camera_motion
    from gid.pipeline.video_loop import reference_frames

    _, cfg, _ = clips[1]["handheld"]
    frames, truth = swaying_video(SwayConfig(**{**cfg.__dict__, "num_frames": 60}))
    traj = make_flow("dis-medium").trajectories(frames)
    fit = camera_motion(traj)
    path = camera_path(SwayConfig(**{**cfg.__dict__, "num_frames": 60}))
    assert fit.significant
    moved = np.abs(fit.affine).sum(axis=(1, 2)) > 0  # frames where a still camera does not fit as well
    assert moved.mean() > 0.8 and (np.linalg.norm(path[~moved], axis=1) < 0.6).all()
    np.testing.assert_allclose(fit.affine[moved, :, 2], path[moved], atol=0.3)
    assert np.abs(fit.affine[:, :, :2]).max() < 5e-3
    residual = remove_camera_motion(traj.copy(), fit)
    corner = np.abs(residual[:, :, :10, :10]).mean()
    assert corner < 0.2 and np.abs(traj[:, :, :10, :10]).mean() > 1.0
    motion = type("M", (), {"camera": fit})()
    stable = reference_frames(frames, motion)
    assert np.abs(stable[:, :10, :10].astype(int) - frames[0, :10, :10]).mean() < 3.0


def test_handheld_gets_removed_or_a_warning(clips, gid, tmp_path):
    tripod, handheld = clips[1]["tripod"][0], clips[1]["handheld"][0]
    res = gid("motion", handheld, "--out", tmp_path / "h", "--frames", 60)
    assert res.returncode == 0 and "camera motion of up to" in res.stderr and "removed by a per-frame affine fit" in res.stderr
    res = gid("motion", handheld, "--out", tmp_path / "k", "--frames", 60, "--camera", "keep")
    assert res.returncode == 0 and "warning: camera motion" in res.stderr and "--camera remove" in res.stderr
    res = gid("motion", tripod, "--out", tmp_path / "t", "--frames", 60)
    assert res.returncode == 0 and "camera" not in res.stderr, res.stderr


def test_loop_command_prints_fidelity_and_writes_panels(clips, gid, tmp_path):
    path = clips[1]["tripod"][0]
    res = gid("loop", path, "--out", tmp_path / "l.mp4", "--frames", 60, "--side-by-side", "--band", "1:4",
              "--amplify", "2", "--gif")
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("fidelity"))
    loop_db, still_db = (float(v) for v in __import__("re").findall(r"([\d.]+) dB", line)[:2])
    assert loop_db > still_db + 2.0, line
    frames, fps = read_video(tmp_path / "l.mp4")
    assert frames.shape == (60, H, 3 * W, 3) and fps == FPS
    real = read_video(path)[0][:60]
    assert np.abs(frames[:, :, :W].astype(int) - real).mean() < 2.0, "left panel: the original clip"
    assert (tmp_path / "l.gif").is_file()


def _audio_only(path):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (np.sin(np.arange(16000) / 10.0) * 0.3).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize("case", ["too short", "no video stream", "start past end", "band outside", "corrupt"])
def test_bad_input_is_one_line_and_writes_nothing(clips, gid, tmp_path, case):
    path = clips[1]["tripod"][0]
    args = ["--frames", 60]
    if case == "too short":
        args, expect = ["--frames", 400], "too short for --frames 400"
    elif case == "no video stream":
        path = tmp_path / "sound.m4a"
        _audio_only(path)
        expect = "no video stream"
    elif case == "start past end":
        args, expect = ["--frames", 60, "--start", 9], "past the end"
    elif case == "band outside":
        args, expect = ["--frames", 60, "--band", "1:20"], "outside [0, 15] Hz"
    else:
        path = tmp_path / "broken.mp4"
        path.write_bytes(clips[1]["tripod"][0].read_bytes()[:3000])
        expect = "re-encode it"
    for command, out in (("loop", tmp_path / "o.mp4"), ("motion", tmp_path / "dir")):
        if case == "band outside" and command == "motion":
            continue
        res = gid(command, path, "--out", out, *args)
        assert res.returncode == 2, (command, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gid: error: ") and expect in lines[0], lines
        assert str(path) in lines[0], lines
        assert not out.exists() and not list(tmp_path.glob(".*tmp*")), "no partial output"


def test_interact_pokes_a_video(clips, gid, tmp_path):
    """A pull at the flower moves it, and the response fades; a pull in the static corner is refused."""
    path = clips[1]["tripod"][0]
    res = gid("interact", path, "--point", f"{W // 2},{H // 2}", "--pull", "4,0", "--out", tmp_path / "p.mp4",
              "--spectral-frames", 60, "--frames", 60, "--damping", 0.3)
    assert res.returncode == 0, res.stderr
    frames, _ = read_video(tmp_path / "p.mp4")
    rest = read_video(path, max_frames=1)[0]  # the video's frame 0: the scene at rest
    moved = make_flow("dis-medium").pairs(np.broadcast_to(rest, frames.shape), frames)
    moved = moved[:, :, H // 3:2 * H // 3, W // 3:2 * W // 3]
    early, late = np.abs(moved[1:5, 0]).mean(), np.abs(moved[-5:, 0]).mean()
    assert early > 1.0 and late < 0.3 * early, (early, late)
    res = gid("interact", path, "--point", "1,1", "--pull", "4,0", "--out", tmp_path / "q.mp4", "--spectral-frames", 60)
    assert res.returncode == 2 and not (tmp_path / "q.mp4").exists()


def test_serve_takes_a_video_upload(clips):
    import time

    from fastapi.testclient import TestClient

    from gid.stages.serve import ServeConfig, create_app

    path = clips[1]["tripod"][0]
    client = TestClient(create_app(ServeConfig(examples=0, work_side=96, spectral_frames=60)))
    res = client.post("/api/photos", files={"photo": ("clip.mp4", path.read_bytes(), "video/mp4")})
    assert res.status_code == 200, res.text
    pid = res.json()["id"]
    assert (res.json()["width"], res.json()["height"]) == (96, 62)
    for _ in range(300):
        info = client.get(f"/api/photos/{pid}").json()
        if info["state"] != "running":
            break
        time.sleep(0.05)
    assert info["state"] == "ready", info
    assert info["modes"] == 15 and np.isclose(info["omega"][0], 2 * np.pi * FPS / 60)
    strict = TestClient(create_app(ServeConfig(examples=0, max_video_seconds=2.0)))
    res = strict.post("/api/photos", files={"photo": ("clip.mp4", path.read_bytes(), "video/mp4")})
    assert res.status_code == 413 and "clip.mp4: the video is 5.0 s long, over the 2 s limit" in res.json()["detail"]
    res = strict.post("/api/photos", files={"photo": ("bad.mp4", b"\x00" * 5000, "video/mp4")})
    assert res.status_code == 400 and "bad.mp4" in res.json()["detail"] and "upload" not in res.json()["detail"]


def test_trajectories_with_progress_are_the_same_flows():
    """`gid motion`/`gid loop` show a flow progress bar: chunks of 16 pairs give the flows of one call."""
    frames, _ = swaying_video(SwayConfig(num_frames=40, width=64, height=42))
    flow = make_flow("dis")
    np.testing.assert_array_equal(flow.trajectories(frames, progress=True), flow.trajectories(frames))
