"""`gid serve` end to end in headless Chromium (Debian's package, driven by Playwright).

Loads the page, uploads a photo with its spectral volume, drags on it, and checks that the displayed
frames change over time and then settle back to the photo; then uploads a short video, whose own
motion is the modal basis. Screenshots go to test-artifacts/.
The browser's integrator is also checked against gid.pipeline.dynamics.integrate.
"""
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gid.datasets.synthetic import SynthConfig, generate_video
from gid.pipeline.dynamics import integrate
from gid.stages.serve import ServeConfig, create_app

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
HASH = """(id) => { const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0; for (let i = 0; i < d.length; i++) h = (Math.imul(h, 31) + d[i]) | 0; return h; }"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = ServeConfig(examples=1, work_side=128)
    srv = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(server)
        yield page
        browser.close()
        assert not errors, errors


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    video = generate_video(2, 0, SynthConfig(num_frames=150, width=256, height=160))
    root = tmp_path_factory.mktemp("serve")
    Image.fromarray(video.frames[0]).save(root / "photo.png")
    np.save(root / "spectral.npy", video.spectral)
    (root / "notes.txt").write_text("not a photo")
    amp = np.abs(video.spectral[1:3]).sum(axis=(0, 1))  # where the slow modes move most
    y, x = np.unravel_index(amp.argmax(), amp.shape)
    return root, (x / 256, y / 160)


def test_bad_upload_shows_a_readable_error(page, scene):
    root, _ = scene
    page.set_input_files("#photo-file", str(root / "notes.txt"))
    page.click("#upload")
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert "notes.txt: cannot be read as an image" in page.inner_text("#error")


def test_drag_moves_the_photo_then_it_settles(page, scene):
    root, (fx, fy) = scene
    page.set_input_files("#photo-file", str(root / "photo.png"))
    page.set_input_files("#spectral-file", str(root / "spectral.npy"))
    page.click("#upload")
    page.wait_for_selector("#panels:not([hidden])", timeout=60_000)
    assert page.is_hidden("#error")
    page.eval_on_selector("#damping", "el => { el.value = 0.9; el.dispatchEvent(new Event('input')); }")
    still = page.evaluate(HASH, "poke")

    box = page.locator("#poke").bounding_box()
    page.mouse.click(box["x"] + 5, box["y"] + 5)  # the sky does not move: refused, nothing changes
    assert "does not move" in page.get_attribute("#poke", "data-state")
    assert page.evaluate(HASH, "poke") == still
    x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 40, y + 10, steps=5)
    pulled = page.evaluate(HASH, "poke")
    assert pulled != still and page.get_attribute("#poke", "data-state") == "pulled"
    page.mouse.up()
    seen = set()
    for _ in range(10):
        seen.add(page.evaluate(HASH, "poke"))
        page.wait_for_timeout(60)
    assert len(seen) >= 4, "the poke panel should animate after the release"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve-moving.png"))

    page.wait_for_selector("#poke[data-state='at rest']", timeout=60_000)
    settled = [page.evaluate(HASH, "poke")]
    for _ in range(5):
        page.wait_for_timeout(100)
        settled.append(page.evaluate(HASH, "poke"))
    assert set(settled) == {still}, "at rest the photo is shown unmoved"
    loop = {page.evaluate(HASH, "loop") for _ in range(3) if page.wait_for_timeout(120) is None}
    assert len(loop) >= 2, "the loop panel plays"
    page.screenshot(path=str(ARTIFACTS / "serve.png"))
    page.eval_on_selector("#amplify", "el => { el.value = 0; el.dispatchEvent(new Event('input')); }")
    page.wait_for_timeout(150)
    assert page.evaluate(HASH, "loop") == still, "amplification 0 freezes the loop on the photo"


def test_video_upload_brings_its_own_motion(page, tmp_path_factory):
    """A short video (a real photo swayed by a known field) is shown by its first frame, its loop
    plays and a drag at the swaying flower moves it."""
    from gid.datasets.swaying_photo import SwayConfig, swaying_video
    from gid.datasets.video_io import write_video

    path = tmp_path_factory.mktemp("video") / "sway.mp4"
    write_video(path, swaying_video(SwayConfig(num_frames=48, width=128, height=84))[0], 30, crf=12)
    page.set_input_files("#spectral-file", [])
    page.set_input_files("#photo-file", str(path))
    page.click("#upload")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('sway.mp4:')", timeout=60_000)
    assert page.is_hidden("#error")
    assert page.inner_text("#status") == "sway.mp4: 15 modes, 128×84"
    page.eval_on_selector("#amplify", "el => { el.value = 3; el.dispatchEvent(new Event('input')); }")
    loop = {page.evaluate(HASH, "loop") for _ in range(4) if page.wait_for_timeout(120) is None}
    assert len(loop) >= 3, "the video's own loop plays"
    still = page.evaluate(HASH, "poke")
    box = page.locator("#poke").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 30, y, steps=5)
    assert page.evaluate(HASH, "poke") != still and page.get_attribute("#poke", "data-state") == "pulled"
    page.mouse.up()
    page.screenshot(path=str(ARTIFACTS / "serve-video.png"))


def test_browser_integrator_matches_the_python_one(page):
    omega, xi, fps = [1.3, 7.0, 18.8], 0.15, 30.0
    q0, v0 = np.array([0.5 - 0.2j, 0.0, 1.0j]), np.array([0.0, 2.0 + 1.0j, -0.5])
    q, v = integrate(np.array(omega), q0, v0, 31, fps, xi)
    js = page.evaluate("""([omega, xi, fps, q, v]) => {
        q = Float64Array.from(q); v = Float64Array.from(v);
        for (let i = 0; i < 30; i++) window.gid.advance(q, v, omega, xi, 1 / fps);
        return [Array.from(q), Array.from(v)]; }""",
        [omega, xi, fps, np.column_stack([q0.real, q0.imag]).ravel().tolist(),
         np.column_stack([v0.real, v0.imag]).ravel().tolist()])
    np.testing.assert_allclose(np.array(js[0]).reshape(3, 2) @ [1, 1j], q[30], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.array(js[1]).reshape(3, 2) @ [1, 1j], v[30], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("vertical", [1.0, 1e-3])
def test_browser_pull_matches_force_for_pull(page, vertical):
    """The page's drag state equals the static deflection of gid.pipeline.dynamics.force_for_pull."""
    from gid.pipeline.dynamics import force_for_pull, modal_basis, shapes_at

    rng = np.random.default_rng(7)
    spectral = rng.normal(size=(4, 4, 5, 6))
    spectral[:, 2:] *= vertical  # 1e-3: nearly rigid vertically, the pull acts sideways only
    basis = modal_basis(spectral, 16, 30.0)
    point, pull = (2, 3), (1.5, -2.0)
    force = force_for_pull(basis, point, pull)
    q = np.conj(shapes_at(basis, point)) @ force / basis.omega**2
    phi = np.stack([basis.shapes[:, 0].real, basis.shapes[:, 0].imag, basis.shapes[:, 1].real,
                    basis.shapes[:, 1].imag], axis=1).astype(np.float32)
    js = page.evaluate("""([phi, omega, x, y, ux, uy]) => {
        const M = omega.length, P = 30, scene = {phi: Float32Array.from(phi), omega, M, P, W: 6, H: 5};
        scene.maxCompliance = 0;
        for (let p = 0; p < P; p++) { const c = window.gid.compliance(scene, p); scene.maxCompliance = Math.max(scene.maxCompliance, c[0] + c[2]); }
        const q = new Float64Array(2 * M);
        window.gid.pullState(scene, x, y, ux, uy, q);
        return Array.from(q); }""", [phi.ravel().tolist(), basis.omega.tolist(), *point, *pull])
    np.testing.assert_allclose(np.array(js).reshape(-1, 2) @ [1, 1j], q, rtol=1e-4, atol=1e-7 * np.abs(q).max())
