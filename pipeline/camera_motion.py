"""Camera motion in a clip's trajectories: a robust per-frame affine fit, to measure or remove.

A handheld camera adds a global motion ``G_t(p) = A_t·(x, y, 1)ᵀ`` (``A_t`` a 2×3 affine matrix)
to every trajectory ``F_t(p)`` of §3. Left in, it is treated as scene motion: the whole picture
sways in the loop, and the modal basis of Davis et al. (2015) is meaningless. METHOD.md: "remove
a global (e.g. affine) fit from the flow, or refuse". Here it is fitted per frame by least squares
by RANSAC on a grid of pixels (inliers within 0.5 px, then refitted on ever closer ones) — so the
largest part of the frame that moves as one rigid picture (background, ground) defines the camera
and the swaying parts, which do not move rigidly, are left out of the fit.

Removing it gives the trajectories relative to a stabilised frame 0: ``F_t − G_t``. The real frames
stabilised the same way are ``frame_t(p + G_t(p))`` (:func:`stabilize`), which is what a loop
rendered from the residual motion should be compared against.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SIGNIFICANT_PX = 0.5  # camera motion below this (largest corner displacement, px) is flow noise
STILL_SHARE = 0.8  # a frame is taken as unmoved when zero motion fits ≥ 80 % as many pixels as the affine fit


@dataclass
class CameraMotion:
    """affine: ``(T, 2, 3)`` float64, ``G_t(x, y) = affine[t] @ (x, y, 1)``; peak_px: largest displacement of
    an image corner over the clip (px); removed: whether it was subtracted from the trajectories."""

    affine: np.ndarray
    peak_px: float
    removed: bool = False

    @property
    def significant(self) -> bool:
        return self.peak_px > SIGNIFICANT_PX


def fit_affine(flow: np.ndarray, step: int, threshold_px: float = 0.5, min_px: float = 0.05) -> np.ndarray:
    """Robust affine fit of one flow field ``(2, H, W)`` → ``(2, 3)``: ``flow(x, y) ≈ A @ (x, y, 1)``.

    RANSAC (OpenCV ``estimateAffine2D``) on every ``step``-th pixel, inliers within ``threshold_px``,
    then refitted by least squares on the pixels within a tolerance of it, halved from ``threshold_px``
    down to ``min_px`` while at least a tenth of the pixels remain (the RANSAC inliers include the slow
    edges of swaying parts, which bias it): the largest set of pixels that move as one rigid picture wins.
    Zero motion is kept when it fits at least ``STILL_SHARE`` as many pixels within ``threshold_px``:
    flow that leaks from a swaying part into its still surroundings (small pictures, DIS fast) can
    make a slightly moving affine look best, and a tripod shot must not be "stabilised" by it.
    """
    height, width = flow.shape[1:]
    ys, xs = np.mgrid[step // 2:height:step, step // 2:width:step]
    src = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    dst = src + flow[:, ys.ravel(), xs.ravel()].T
    if not np.isfinite(dst).all() or len(src) < 3:
        return np.zeros((2, 3))
    matrix, _ = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=threshold_px,
                                     maxIters=500, confidence=0.995, refineIters=10)
    if matrix is None:
        return np.zeros((2, 3))
    design = np.concatenate([src, np.ones((len(src), 1), np.float32)], axis=1).astype(np.float64)
    tolerance = threshold_px
    while tolerance > min_px:  # least squares on the pixels that move ever more exactly with the camera
        close = np.linalg.norm(dst - design @ matrix.T, axis=1) < tolerance
        if close.sum() < max(3, len(src) // 10):
            break
        matrix = np.linalg.lstsq(design[close], dst[close].astype(np.float64), rcond=None)[0].T
        tolerance /= 2
    fitted = (np.linalg.norm(dst - design @ matrix.T, axis=1) < threshold_px).sum()
    still = (np.linalg.norm(dst - src, axis=1) < threshold_px).sum()
    if still >= STILL_SHARE * fitted:  # a still camera explains the picture about as well: no camera motion
        return np.zeros((2, 3))
    return matrix - np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def affine_flow(affine: np.ndarray, height: int, width: int) -> np.ndarray:
    """One frame's ``(2, 3)`` → its global flow ``G_t`` ``(2, H, W)`` float32."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    a = affine.astype(np.float32)
    return a[:, 0, None, None] * xs + a[:, 1, None, None] * ys + a[:, 2, None, None]


def camera_motion(traj: np.ndarray) -> CameraMotion:
    """Fit ``G_t`` to every frame of trajectories ``(T, 2, H, W)`` (``G_0 = 0`` as ``F_0 = 0``).

    The grid step is ``min(H, W) // 48`` (at least 2): a few thousand pixels per frame at any size.
    """
    height, width = traj.shape[2:]
    step = max(2, min(height, width) // 48)
    affine = np.stack([fit_affine(f, step) if t else np.zeros((2, 3)) for t, f in enumerate(traj)])
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]], np.float64)
    peak = float(np.linalg.norm(np.einsum("tij,cj->tci", affine, corners), axis=-1).max())
    return CameraMotion(affine, peak)


def remove_camera_motion(traj: np.ndarray, camera: CameraMotion) -> np.ndarray:
    """Trajectories relative to the stabilised frame 0, in place: ``F_t ← F_t − G_t`` ``(T, 2, H, W)``."""
    for t in range(1, len(traj)):
        traj[t] -= affine_flow(camera.affine[t], *traj.shape[2:])
    camera.removed = True
    return traj


def stabilize(frames: np.ndarray, camera: CameraMotion) -> np.ndarray:
    """Real frames ``(T, H, W, 3)`` with the camera motion undone: ``frame_t(p + G_t(p))`` (bilinear)."""
    height, width = frames.shape[1:3]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty_like(frames)
    for t, frame in enumerate(frames):
        flow = affine_flow(camera.affine[t], height, width)
        out[t] = cv2.remap(frame, xs + flow[0], ys + flow[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out
