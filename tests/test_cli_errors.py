"""Every `gid` command against a table of bad inputs: each ends in one line, exit code 2, nothing written.

A case passes when `gid` exits with 2, stderr is one line ``gid: error: …`` that names the bad input
(the ``names`` column: the option, path or value the user gave), there is no traceback, and the
command wrote no file (the test's folder holds the same files before and after, so a rerun finds
nothing it would trust). Cases run in-process through :func:`gid.stages.cli.main` (fast: no Python
start-up); an unreachable ``--address`` runs as a real `gid` process, and the upload limit of
`gid serve` goes through its web app. Each case has 60 s (pytest-timeout); the unreachable address
has 30 s.

Tried broken: run against the commands before the checks of datasets/validate.py, most of the table
failed here: a missing or junk video started Ray (60 s timeout, or exit 0 with an error row), a
truncated bundle ended as a diffusers OSError (exit 1), `render --out FILE` rendered before failing
and `synth --num-freqs 0` printed its progress bar first.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gid.stages.cli import main

pytestmark = pytest.mark.timeout(60)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Good and bad inputs: a synthetic set, clip tables (K = 4, with and without target frames),
    a random-weight bundle (K = 16 at 64x48), broken bundles and files of random bytes."""
    from PIL import Image

    from gid.datasets.clip_table import synthetic_to_clips
    from gid.datasets.render_pairs import write_synthetic_render_clips
    from gid.datasets.synthetic import SynthConfig, write_dataset
    from gid.testing.bundles import write_random_bundle

    root = tmp_path_factory.mktemp("bad_inputs")
    small = SynthConfig(num_frames=16, width=64, height=48, num_freqs=4)
    write_dataset(root / "synth", 2, small, seed=3, progress=False)
    synthetic_to_clips(root / "synth", root / "clips")
    write_synthetic_render_clips(root / "render_clips", 1, small, target_frames=2)
    write_random_bundle(root / "bundle", num_frames=16)
    rng = np.random.default_rng(0)
    (root / "empty").mkdir()
    (root / "file.txt").write_text("a file, not a folder")
    (root / "empty.jpg").write_bytes(b"")
    for suffix in ("jpg", "mp4", "npy", "safetensors", "pth"):
        (root / f"junk.{suffix}").write_bytes(rng.bytes(4096))
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / "photo.png")
    np.save(root / "spectral.npy", np.zeros((4, 4, 48, 64), np.float32))
    np.save(root / "spectral3.npy", np.zeros((4, 3, 48, 64), np.float32))
    # Broken bundles: one without its U-Net, one whose VAE weights are cut short.
    import shutil

    shutil.copytree(root / "bundle", root / "no_unet")
    shutil.rmtree(root / "no_unet" / "unet")
    shutil.copytree(root / "bundle", root / "truncated")
    weights = next((root / "truncated" / "vae").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (root / "bad_renderer").mkdir()
    (root / "bad_renderer" / "config.json").write_text(json.dumps({"preset": "tiny"}))
    (root / "bad_renderer" / "diffusion_pytorch_model.safetensors").write_bytes(rng.bytes(4096))
    return root


# (command line, text the error line must contain: the input it names). {w} is the world folder,
# {o} a fresh output path in the case's own folder.
CASES = [
    # gid synth
    ("synth {o} --frames 0", "--frames"),
    ("synth {o} --frames -5", "--frames"),
    ("synth {o} --size 0x0", "--size"),
    ("synth {o} --size abc", "--size"),
    ("synth {o} --size -64x48", "--size"),
    ("synth {o} --fps 0", "--fps"),
    ("synth {o} --num-videos 0", "--num-videos"),
    ("synth {o} --num-freqs 0", "--num-freqs"),
    ("synth {w}/file.txt/o", "file.txt"),
    ("synth /proc/gid-out", "/proc/gid-out"),
    ("synth", "out"),
    # gid preview
    ("preview {w}/missing --out {o}", "missing"),
    ("preview {w}/empty --out {o}", "empty"),
    ("preview {w}/file.txt --out {o}", "file.txt"),
    # gid preprocess
    ("preprocess {w}/missing.mp4 --out {o}", "missing.mp4"),
    ("preprocess {w}/empty --out {o}", "empty"),
    ("preprocess {w}/junk.mp4 --out {o}", "junk.mp4"),
    ("preprocess {w}/synth/videos --out {o} --frames 0", "--frames"),
    ("preprocess {w}/synth/videos --out {o} --frames -1", "--frames"),
    ("preprocess {w}/synth/videos --out {o} --size 0x0", "--size"),
    ("preprocess {w}/synth/videos --out {o} --size abc", "--size"),
    ("preprocess {w}/synth/videos --out {o} --fps 0", "--fps"),
    ("preprocess {w}/synth/videos --out {o} --stride 0", "--stride"),
    ("preprocess {w}/synth/videos --out {o} --num-freqs 0", "--num-freqs"),
    ("preprocess {w}/synth/videos --out {o} --flow nonsense", "nonsense"),
    ("preprocess {w}/synth/videos --out {w}/file.txt", "file.txt"),
    ("preprocess {w}/synth/videos --out /proc/gid-out", "/proc/gid-out"),
    # gid train vae / motion / renderer
    ("train vae --data {w}/missing --out {o}", "missing"),
    ("train vae --data {w}/empty --out {o}", "empty"),
    ("train vae --data {w}/file.txt --out {o}", "file.txt"),
    ("train vae --data {w}/clips --out {o}", "--batch-size 4"),
    ("train vae --data {w}/clips --out {o} --batch-size 1 --num-workers 3", "--num-workers"),
    ("train vae --data {w}/clips --out {o} --batch-size 1 --max-steps 0", "--max-steps"),
    ("train vae --data {w}/clips --out {o} --batch-size 0", "--batch-size"),
    ("train vae --data {w}/clips --out {o} --batch-size 1 --config huge", "huge"),
    ("train vae --data {w}/clips --out {w}/file.txt --batch-size 1", "file.txt"),
    ("train vae --data {w}/clips --out /proc/gid-out --batch-size 1", "/proc/gid-out"),
    ("train motion --data {w}/clips --out {w}/empty --batch-size 1", "vae"),
    ("train motion --data {w}/clips --out {w}/bundle --batch-size 1", "num_freqs = 4"),
    ("train renderer --data {w}/clips --out {o}", "--target-frames"),
    ("train renderer --data {w}/render_clips --out {o} --batch-size 4", "--batch-size 4"),
    # gid animate
    ("animate {w}/missing.jpg --out {o}.mp4 --spectral {w}/spectral.npy", "missing.jpg"),
    ("animate {w}/junk.jpg --out {o}.mp4 --spectral {w}/spectral.npy", "junk.jpg"),
    ("animate {w}/empty.jpg --out {o}.mp4 --spectral {w}/spectral.npy", "empty.jpg"),
    ("animate {w}/empty --out {o}.mp4 --spectral {w}/spectral.npy", "empty"),
    ("animate {w}/photo.png --out {o}.mp4 --spectral {w}/junk.npy", "junk.npy"),
    ("animate {w}/photo.png --out {o}.mp4 --spectral {w}/spectral3.npy", "spectral3.npy"),
    ("animate {w}/photo.png --out {o}.mp4 --spectral {w}/empty", "empty"),
    ("animate {w}/photo.png --out {o}.mp4 --model {w}/no_unet", "unet"),
    ("animate {w}/photo.png --out {o}.mp4 --model {w}/truncated", "truncated"),
    ("animate {w}/photo.png --out {o}.mp4 --model {w}/empty", "empty"),
    ("animate {w}/photo.png --out {o}.mp4 --spectral {w}/spectral.npy --renderer {w}/bad_renderer", "bad_renderer"),
    ("animate {w}/photo.png --out {o}.mp4 --spectral {w}/spectral.npy --frames 0", "--frames"),
    ("animate {w}/photo.png --out {o}.mp4 --spectral {w}/spectral.npy --fps -30", "--fps"),
    ("animate {w}/photo.png --out {o}.mp4 --model {w}/bundle --steps 0", "--steps"),
    ("animate {w}/photo.png --out {o}.mp4 --spectral {w}/spectral.npy --max-side 0", "--max-side"),
    ("animate {w}/photo.png --out {w}/file.txt/v.mp4 --spectral {w}/spectral.npy", "file.txt"),
    # gid render
    ("render {w}/photo.png --model {w}/no_unet --out {o}", "unet"),
    ("render {w}/photo.png --model {w}/truncated --out {o}", "truncated"),
    ("render {w}/missing.jpg --model {w}/bundle --out {o}", "missing.jpg"),
    ("render {w}/photo.png --model {w}/bundle --out {o} --frames 0", "--frames"),
    ("render {w}/photo.png --model {w}/bundle --out {o} --steps 0", "--steps"),
    ("render {w}/photo.png --model {w}/bundle --out {o} --batch-size 0", "--batch-size"),
    ("render {w}/photo.png --model {w}/bundle --out {w}/file.txt", "file.txt"),
    # gid interact
    ("interact {w}/photo.png --out {o}.mp4 --point 3,4 --force 1,0 --spectral {w}/junk.npy", "junk.npy"),
    ("interact {w}/junk.jpg --out {o}.mp4 --point 3,4 --force 1,0 --spectral {w}/spectral.npy", "junk.jpg"),
    ("interact {w}/photo.png --out {o}.mp4 --point abc --force 1,0 --spectral {w}/spectral.npy", "--point"),
    ("interact {w}/photo.png --out {o}.mp4 --point 3,4 --force 1,0 --spectral {w}/spectral.npy --frames 0",
     "--frames"),
    ("interact {w}/photo.png --out {o}.mp4 --point 3,4 --force 1,0 --spectral {w}/spectral.npy --damping -1",
     "--damping"),
    # gid serve (before it binds a port)
    ("serve --model {w}/no_unet", "unet"),
    ("serve --model {w}/missing", "missing"),
    ("serve --max-upload-mb 0", "--max-upload-mb"),
    ("serve --port -1", "--port"),
    # gid eval
    ("eval --real {w}/missing --fake {w}/synth --out {o}", "missing"),
    ("eval --real {w}/synth --fake {w}/empty --out {o}", "empty"),
    ("eval --real {w}/synth --fake {w}/synth --out {o} --crop abc", "--crop"),
    ("eval --real {w}/synth --fake {w}/synth --out {o} --inception {w}/junk.safetensors", "junk.safetensors"),
    ("eval --real {w}/synth --fake {w}/synth --out {o} --frame-stride 0", "--frame-stride"),
    # gid convert-weights
    ("convert-weights {w}/junk.pth {o} --kind inception", "junk.pth"),
    ("convert-weights {w}/missing.pth {o} --kind inception", "missing.pth"),
    ("convert-weights {w}/junk.pth {o} --kind nope", "nope"),
    # gid demo
    ("demo --num-videos 0 --out {o}", "--num-videos"),
    ("demo --out {w}/file.txt", "file.txt"),
]


def _run(world: Path, out: Path, line: str, capsys) -> tuple[int, str]:
    args = line.format(w=world, o=out).split()
    with pytest.raises(SystemExit) as exited:
        main(args)
    return exited.value.code, capsys.readouterr().err


@pytest.mark.parametrize("line,names", CASES, ids=[c[0].replace("{w}/", "").replace("{o}", "OUT") for c in CASES])
def test_bad_input_gives_one_line(world, line, names, capsys, tmp_path):
    before = _files(world)
    code, err = _run(world, tmp_path / "out", line, capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gid: error: "), err
    assert "Traceback" not in err and names in lines[0], err
    assert _files(world) == before and not _files(tmp_path)  # nothing written that a rerun would trust


def test_unreachable_address_fails_fast_in_one_line(world):
    """A real `gid` process: nobody listens on port 1 of this machine."""
    done = subprocess.run([sys.executable, "-m", "gid.stages.cli", "preprocess", str(world / "synth" / "videos"),
                           "--out", str(world / "out"), "--address", "127.0.0.1:1"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("gid: error: nobody answers at --address 127.0.0.1:1")
    assert not (world / "out").exists()


def test_serve_refuses_an_upload_over_the_limit(world):
    """`gid serve --max-upload-mb 0.1`: a 1 MB photo gets 413 and one line saying the limit."""
    from fastapi.testclient import TestClient

    from gid.stages.serve import ServeConfig, create_app

    client = TestClient(create_app(ServeConfig(examples=0, max_upload_bytes=int(0.1 * 2**20))))
    res = client.post("/api/photos", files={"photo": ("big.png", b"\0" * 2**20, "image/png")})
    assert res.status_code == 413
    detail = res.json()["detail"]
    assert "larger than the 0.1 MB" in detail and "\n" not in detail


def test_count_of_bad_inputs():
    """The README's figure: the table above plus the two cases that run outside `main`."""
    total = len(CASES) + 2
    print(f"{total} bad inputs tried, 0 tracebacks, 0 partial outputs")
    assert total >= 40
