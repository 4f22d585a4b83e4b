"""`gid serve`: a local web page to poke a photo and watch it respond (§6, Eq. 6), and to play its loop.

Design: the server does the heavy, one-off work per photo (decode and check the upload, predict the
motion with the diffusion model or read a given spectral volume, build the image-space modal basis);
the browser does everything that has to be interactive. It downloads the working image and the
modal basis once (``(M, 4, H, W)`` float32, channels ``(Re φx, Im φx, Re φy, Im φy)``, plus ω_k),
then, every animation frame, integrates the modal oscillators with the same sub-stepped
semi-implicit Euler as :mod:`gid.pipeline.dynamics`, sums ``Re Σ φ_k q_k`` and warps the photo on a
canvas. A drag from p to p + d shows the static deflection under the force that moves p by d
(:func:`gid.pipeline.dynamics.force_for_pull`); letting go releases it. The loop panel evaluates
``α·Re Σ φ_k e^{iω_k τ}`` (the predicted motion, §4.1) with amplification α and a speed factor.

API (JSON errors as ``{"detail": message}``, shown in the page):

- ``GET /api/config``: what the server offers (model loaded, example scenes, upload limits).
- ``POST /api/photos`` (multipart: ``photo``, optional ``spectral`` .npy): check and store an upload,
  start its motion job; a video as ``photo`` (by its extension) brings its own motion (its first
  clip's spectral volume, :mod:`gid.pipeline.video_loop`) and is shown by its first frame; ``POST /api/examples/{n}``: a synthetic scene with exact motion.
- ``GET /api/photos/{id}``: job state and progress, and once ready the basis' shape and ω_k.
- ``GET /api/photos/{id}/image.png``, ``GET /api/photos/{id}/basis.bin``: working image, modal basis.

Everything is kept in memory (the last ``max_photos`` photos); the server binds 127.0.0.1 by default.
Uploads are checked and decoded by gid.datasets.uploads, motion comes from gid.pipeline.motion_source.
"""

import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gid.datasets.uploads import UploadError, decode_photo, decode_spectral, decode_video, read_limited
from gid.pipeline.motion_source import build_basis, video_source
from gid.pipeline.sampling import SAMPLING, check_sampling

STATIC = Path(__file__).parent / "static"


@dataclass
class ServeConfig:
    """What `gid serve` offers. Sizes in pixels, limits in bytes."""

    model: Path | None = None  # a trained bundle; without it, photos need a spectral volume
    examples: int = 4  # synthetic example scenes offered in the page (exact motion)
    work_side: int = 256  # long side of the image the page animates (the basis has this size)
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000  # checked from the image header, before decoding
    max_photos: int = 16
    max_video_seconds: float = 30.0  # longest video accepted (its first spectral_frames frames are used)
    spectral_frames: int = 150  # T and fps of uploaded spectral volumes (they define ω_k)
    spectral_fps: float = 30.0
    steps: int = SAMPLING.num_inference_steps
    guidance: float = SAMPLING.guidance_scale
    seed: int = 0

    def __post_init__(self) -> None:
        check_sampling(self.steps, self.guidance)
        if self.model is not None:
            from gid.pipeline.motion_pipeline import read_bundle_config

            read_bundle_config(self.model)
        if not 0 <= self.examples <= 64:
            raise ValueError(f"--examples must be between 0 and 64, got {self.examples}")
        if self.work_side < 32:
            raise ValueError(f"--work-side must be at least 32, got {self.work_side}")
        if not self.max_video_seconds > 0:
            raise ValueError(f"--max-video-seconds must be positive, got {self.max_video_seconds}")
        if self.max_upload_bytes < 1024:
            raise ValueError(f"--max-upload-mb is too small ({self.max_upload_bytes} bytes)")


@dataclass
class Photo:
    """One photo on the server: its working image, and its modal basis once the motion job is done."""

    image: np.ndarray  # (H, W, 3) uint8 at the working size
    name: str
    state: str = "running"  # running | ready | error
    progress: float = 0.0
    message: str = ""
    basis: Any = None  # gid.pipeline.dynamics.ModalBasis


def basis_bytes(basis) -> bytes:
    """``(M, 4, H, W)`` float32 little-endian: ``(Re φx, Im φx, Re φy, Im φy)`` per mode."""
    s = basis.shapes
    out = np.stack([s[:, 0].real, s[:, 0].imag, s[:, 1].real, s[:, 1].imag], axis=1)
    return out.astype("<f4").tobytes()


def create_app(cfg: ServeConfig | None = None):
    """The FastAPI application (pass it to uvicorn, or to ``fastapi.testclient.TestClient``)."""
    from fastapi import FastAPI, File, HTTPException, UploadFile
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles

    from gid.pipeline.images import fit_image

    cfg = cfg or ServeConfig()
    app = FastAPI(title="gid serve", description="Poke a photo and watch it respond (Generative Image Dynamics §6).")
    photos: OrderedDict[str, Photo] = OrderedDict()
    models: dict[str, Any] = {}
    jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gid-motion")
    app.state.photos, app.state.jobs, app.state.config = photos, jobs, cfg

    def add(photo: Photo) -> str:
        pid = uuid.uuid4().hex[:12]
        photos[pid] = photo
        while len(photos) > cfg.max_photos:
            photos.popitem(last=False)
        return pid

    def get(pid: str) -> Photo:
        if pid not in photos:
            raise HTTPException(404, f"no photo {pid!r} on this server (it may have been dropped: upload it again)")
        return photos[pid]

    def run(photo: Photo, work) -> None:
        """Run ``work(photo) -> MotionSource`` in the job thread; record the basis or the error."""
        def job() -> None:
            try:
                source = work(photo)
                photo.basis = build_basis(photo.image, source)
                photo.progress, photo.state = 1.0, "ready"
            except Exception as err:  # noqa: BLE001 - shown to the user in the page
                photo.state, photo.message = "error", f"motion failed: {err}"

        jobs.submit(job)

    @app.middleware("http")
    async def refuse_huge_bodies(request, call_next):
        """Answer 413 from the Content-Length header, before the multipart body is spooled to disk."""
        limit = 2 * cfg.max_upload_bytes + 65536  # a photo and a spectral volume, plus form overhead
        length = request.headers.get("content-length", "")
        if request.method == "POST" and length.isdigit() and int(length) > limit:
            return JSONResponse({"detail": f"upload of {int(length) / 2**20:.1f} MB is larger than the "
                                           f"{cfg.max_upload_bytes / 2**20:.3g} MB limit per file; shrink it first"},
                                status_code=413)
        return await call_next(request)

    @app.exception_handler(UploadError)
    async def upload_error(_request, err: UploadError):
        return JSONResponse({"detail": str(err)}, status_code=err.status)

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/config")
    def config():
        return {"model": cfg.model is not None, "examples": cfg.examples, "max_upload_bytes": cfg.max_upload_bytes,
                "max_video_seconds": cfg.max_video_seconds,
                "spectral_frames": cfg.spectral_frames, "spectral_fps": cfg.spectral_fps}

    @app.post("/api/photos")
    def upload(photo: UploadFile = File(...), spectral: UploadFile | None = File(None)):
        from gid.pipeline.footage import is_video

        name = photo.filename or "photo"
        data = read_limited(photo.file, cfg.max_upload_bytes, name)
        if is_video(name):  # its own motion is the modal basis; the flow runs in the job thread
            clip = decode_video(data, name, cfg.max_pixels, cfg.max_video_seconds, cfg.spectral_frames, cfg.work_side)
            entry = Photo(image=clip.frames[0], name=name)
            pid = add(entry)
            run(entry, lambda _p: video_source(clip))
            return {"id": pid, "width": entry.image.shape[1], "height": entry.image.shape[0]}
        image = fit_image(decode_photo(data, name, cfg.max_pixels), cfg.work_side)
        source = None
        if spectral is not None and spectral.filename:
            sname = spectral.filename
            source = decode_spectral(read_limited(spectral.file, cfg.max_upload_bytes, sname), sname, cfg.spectral_frames,
                                     cfg.spectral_fps)
        elif cfg.model is None:
            raise UploadError("this server has no motion model: upload a spectral volume (.npy) with the photo, "
                              "choose an example scene, or restart it with `gid serve --model BUNDLE`")
        entry = Photo(image=image, name=name)
        pid = add(entry)
        if source is not None:
            run(entry, lambda _p: source)
        else:
            from gid.pipeline import GIDPipeline
            from gid.pipeline.motion_source import predict_motion

            def predict(p: Photo):
                def callback(step: int, total: int) -> None:
                    p.progress = step / max(total, 1)

                if "pipe" not in models:  # loaded once, in the job thread, on first use
                    models["pipe"] = GIDPipeline.from_pretrained(cfg.model)
                return predict_motion(models["pipe"], p.image, cfg.steps, cfg.guidance, cfg.seed, callback)

            run(entry, predict)
        return {"id": pid, "width": image.shape[1], "height": image.shape[0]}

    @app.post("/api/examples/{index}")
    def example(index: int):
        if not 0 <= index < cfg.examples:
            raise HTTPException(404, f"example {index} does not exist; this server offers 0 … {cfg.examples - 1}")
        from gid.datasets.synthetic import SynthConfig, generate_video
        from gid.pipeline.motion_source import MotionSource

        synth = SynthConfig(num_frames=cfg.spectral_frames, fps=cfg.spectral_fps, width=256, height=160)
        preview = generate_video(index, 0, SynthConfig(num_frames=2, fps=synth.fps, width=256, height=160))
        image = fit_image(preview.frames[0], cfg.work_side)
        entry = Photo(image=image, name=f"example {index}")
        pid = add(entry)

        def exact(_p: Photo):
            video = generate_video(index, 0, synth)  # same scene; its exact spectral volume (§4.1)
            return MotionSource(video.spectral, synth.num_frames, synth.fps)

        run(entry, exact)
        return {"id": pid, "width": image.shape[1], "height": image.shape[0]}

    @app.get("/api/photos/{pid}")
    def status(pid: str):
        p = get(pid)
        out = {"id": pid, "name": p.name, "state": p.state, "progress": p.progress, "message": p.message,
               "width": p.image.shape[1], "height": p.image.shape[0]}
        if p.state == "ready":
            out.update(modes=len(p.basis.omega), omega=p.basis.omega.tolist(), bins=p.basis.bins.tolist())
        return out

    @app.get("/api/photos/{pid}/image.png")
    def image_png(pid: str):
        import cv2

        _, png = cv2.imencode(".png", get(pid).image[..., ::-1])
        return Response(png.tobytes(), media_type="image/png")

    @app.get("/api/photos/{pid}/basis.bin")
    def basis_bin(pid: str):
        p = get(pid)
        if p.state != "ready":
            raise HTTPException(409, f"the motion of {p.name} is not ready yet ({p.state}); wait for it")
        return Response(basis_bytes(p.basis), media_type="application/octet-stream")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def serve(cfg: ServeConfig, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the page with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(cfg), host=host, port=port, log_level="info")
