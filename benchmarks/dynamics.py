"""Interactive dynamics speed: gid's integrator and displacement synthesis vs naive loops, same run.

    python benchmarks/dynamics.py [--frames 150] [--size 256x160] [--repeats 5] [--browser]

Prints ms and the ratio (reference time / gid time; > 1 means gid is faster) for

- modal integration (§6 Eq. 6): the frame propagator ``Aⁿ`` of :func:`gid.pipeline.dynamics.integrate`
  vs stepping the same semi-implicit Euler sub-steps one by one (numpy, vectorised over modes);
- displacement ``Re Σ_k φ_k q_k(t)`` for all frames: one real matrix product vs a per-frame loop;
- the whole ``simulate`` call, and its cost per frame.

With ``--browser`` (needs /usr/bin/chromium and Playwright) it also times the page's per-frame work
in headless Chromium: integrate, sum the modes and splat the photo (what `gid serve` does 60×/s).
"""
from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np

from gid.pipeline.dynamics import displacement, integrate, modal_basis, simulate, substeps_for
from gid.stages.options import parse_size
from timing import best_ms


def naive_integrate(omega, q0, v0, num_frames, fps, damping):
    """Reference: every sub-step of the same scheme, one numpy update per sub-step."""
    n = substeps_for(omega, fps, damping)
    h = 1.0 / (fps * n)
    c = 1.0 - 2.0 * damping * omega * h
    q, v = q0.astype(np.complex128), v0.astype(np.complex128)
    out = np.empty((num_frames, len(omega)), np.complex128)
    for t in range(num_frames):
        out[t] = q
        for _ in range(n):
            v = c * v - h * omega**2 * q
            q = q + h * v
    return out


def naive_displacement(basis, q):
    """Reference: one complex tensordot per frame."""
    return np.stack([np.real(np.tensordot(qt, basis.shapes, axes=1)) for qt in q]).astype(np.float32)


def browser_ms(width: int, height: int, modes: int, repeats: int) -> dict[str, float]:
    """Per-frame ms of the page's advance / displacement / warp, measured inside headless Chromium."""
    from playwright.sync_api import sync_playwright

    static = Path(__file__).resolve().parent.parent / "stages" / "static"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        page.set_content((static / "index.html").read_text().replace('<script src="/static/app.js"></script>', ""))
        page.add_script_tag(content=(static / "app.js").read_text())
        result = page.evaluate("""([W, H, M, repeats]) => {
            const P = W * H, phi = new Float32Array(M * 4 * P), src = new Uint8ClampedArray(4 * P);
            for (let i = 0; i < phi.length; i++) phi[i] = Math.sin(i * 0.37) * 0.5;
            for (let i = 0; i < src.length; i++) src[i] = (i * 13) & 255;
            const omega = Array.from({length: M}, (_, k) => 2 * Math.PI * (k + 1) * 30 / 150);
            const scene = {W, H, P, M, phi, omega, src, acc: new Float64Array(4 * P), cover: new Float64Array(P)};
            scene.metric = window.gid.splatMetric(scene);
            const q = new Float64Array(2 * M).fill(0.3), v = new Float64Array(2 * M).fill(0.1);
            const dx = new Float32Array(P), dy = new Float32Array(P), out = new ImageData(W, H);
            const time = (fn) => { fn(); let best = Infinity;
              for (let r = 0; r < repeats; r++) { const t0 = performance.now(); for (let i = 0; i < 10; i++) fn();
                best = Math.min(best, (performance.now() - t0) / 10); } return best; };
            return { advance: time(() => window.gid.advance(q, v, omega, 0.1, 1 / 60)),
                     displacement: time(() => window.gid.displacement(scene, q, dx, dy)),
                     warp: time(() => window.gid.warp(scene, dx, dy, out)) };
        }""", [width, height, modes, repeats])
        browser.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--size", default="256x160")
    parser.add_argument("--num-freqs", type=int, default=16)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--damping", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="also time the page's per-frame work in Chromium")
    args = parser.parse_args()
    width, height = parse_size(args.size)
    T, K, fps = args.frames, args.num_freqs, args.fps
    rng = np.random.default_rng(0)
    spectral = rng.normal(size=(K, 4, height, width)).astype(np.float32)
    basis = modal_basis(spectral, T, fps)
    q0 = np.zeros(K - 1, np.complex128)
    v0 = rng.normal(size=K - 1) + 1j * rng.normal(size=K - 1)
    q, _ = integrate(basis.omega, q0, v0, T, fps, args.damping)
    n = substeps_for(basis.omega, fps, args.damping)
    print(f"machine: {platform.processor() or platform.machine()}; T={T} frames at {fps:g} fps, {K - 1} modes, "
          f"{height}x{width}, damping {args.damping}: {n} sub-steps per frame ({n * T} in all)")
    assert np.allclose(naive_integrate(basis.omega, q0, v0, T, fps, args.damping), q, rtol=1e-7, atol=1e-10)
    print(f"{'case':40s} {'reference ms':>13s} {'gid ms':>8s} {'ratio':>7s}")
    cases = [
        ("integrate: Aⁿ per frame vs every sub-step", lambda: naive_integrate(basis.omega, q0, v0, T, fps, args.damping),
         lambda: integrate(basis.omega, q0, v0, T, fps, args.damping)),
        ("displacement: one matmul vs per frame", lambda: naive_displacement(basis, q), lambda: displacement(basis, q)),
    ]
    for name, reference, ours in cases:
        ref_ms, gid_ms = best_ms(reference, args.repeats), best_ms(ours, args.repeats)
        print(f"{name:40s} {ref_ms:13.2f} {gid_ms:8.2f} {ref_ms / gid_ms:7.1f}")
    total = best_ms(lambda: simulate(spectral, (width / 2, height / 2), (1.0, 0.5), T, fps, args.damping), args.repeats)
    print(f"simulate, whole clip: {total:.1f} ms = {total / T:.3f} ms per frame")
    if args.browser:
        ms = browser_ms(width, height, K - 1, args.repeats)
        per_frame = sum(ms.values())
        print("browser (headless Chromium), per displayed frame: " + ", ".join(f"{k} {v:.3f} ms" for k, v in ms.items())
              + f"; total {per_frame:.2f} ms → up to {1000 / per_frame:.0f} frames/s on one core")


if __name__ == "__main__":
    main()
