"""Interactive dynamics: an image-space modal basis driven by user forces (paper §6, Eq. 6).

Following Davis et al. 2015 ("Image-space modal bases"), every frequency bin k ≥ 1 of a spectral
volume is a vibration mode with complex shape ``φ_k(p) ∈ C²`` and angular frequency
``ω_k = 2π·k·fps/T`` (rad/s). The displacement field is ``F(p, τ) = Re Σ_k φ_k(p)·q_k(τ)``.

Shape normalisation (project convention). The inverse transform of §4.1 is
``F_t = (1/T)·[S_0 + Σ_{k≥1} w_k·Re(S_k·exp(2πi·k·t/T))]`` with ``w_k = 2`` (``w = 1`` for the
Nyquist bin), so we take ``φ_k = (w_k/T)·S_k``: then the free motion ``q_k(τ) = exp(iω_k·τ)``
(``τ = t/fps`` seconds) replays exactly the predicted motion without its static DC offset
``S_0/T``. Modal coordinates are therefore in units of "one predicted amplitude".

Each coordinate is a damped oscillator (Eq. 6)::

    q̈_k + 2ξ·ω_k·q̇_k + ω_k²·q_k = f_k / m,      f_k = φ_k(p)ᴴ·d  (complex dot product)

for a force ``d ∈ R²`` (px) at pixel ``p``. Two ways to apply it, both followed by free motion:

- impulse (a flick): ``q_k(0) = 0``, ``q̇_k(0) = f_k/m``;
- release (pull and let go): the static deflection under the force held until τ = 0,
  ``q_k(0) = f_k/(m·ω_k²)``, ``q̇_k(0) = 0``. :func:`force_for_pull` gives the force that pulls the
  point by a chosen displacement, which is what a drag on the web page means.

Integrator: semi-implicit (symplectic) Euler with sub-steps ``h = 1/(fps·n)``::

    v ← v − h·(2ξω·v + ω²·q);    q ← q + h·v

Plain forward Euler multiplies an undamped oscillator's energy by ``1 + (ωh)²`` every step, so
energy grows without bound however small h is; the semi-implicit update is area-preserving
(det = 1 − 2ξωh), conserves the modified energy ``v² + ω²q² − hω²·q·v`` exactly when ξ = 0 and is
stable for ``ωh < 2``. Sub-steps are chosen so that ``ω_max·h·max(1, ξ) ≤ 0.002``: the discrete
frequency is off by ≈ (ωh)²/24 < 10⁻⁶ and the decay rate by ≈ ξωh/2 < 10⁻³ relative; against the
closed-form damped sinusoid the whole response is within 0.1 % of its peak (tests/test_dynamics.py).
The scheme is linear with constant coefficients, so the n sub-steps between two frames are one
2×2 matrix per mode, ``P = Aⁿ`` (computed by repeated squaring): the same explicit Euler
trajectory, at a cost independent of n (benchmarks/dynamics.py compares it with the step loop).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ACCURACY = 0.002  # largest ω·h·max(1, ξ) per sub-step
MIN_COMPLIANCE = 1e-4  # pulls act in directions with ≥ 1 % of the largest modal amplitude (compliance 10⁻⁴)


@dataclass
class ModalBasis:
    """Modes k ≥ 1 of a spectral volume.

    shapes: ``(M, 2, H, W)`` complex128, ``φ_k`` in px per unit of ``q_k`` (channel 0 = x, 1 = y);
    omega: ``(M,)`` angular frequencies ω_k in rad/s; bins: ``(M,)`` the frequency indices k.
    """

    shapes: np.ndarray
    omega: np.ndarray
    bins: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the shapes."""
        return self.shapes.shape[-2], self.shapes.shape[-1]


def modal_basis(spectral: np.ndarray, num_frames: int, fps: float) -> ModalBasis:
    """Modes of a spectral volume ``(K, 4, H, W)`` computed from T = ``num_frames`` frames at ``fps``.

    Shapes are ``φ_k = (w_k/T)·S_k`` (module docstring), so ``q_k(τ) = exp(iω_k·τ)`` replays the
    spectral volume's motion minus its DC offset.
    """
    spectral = np.asarray(spectral)
    if spectral.ndim != 4 or spectral.shape[1] != 4:
        raise ValueError(f"spectral volume must have shape (K, 4, H, W), got {spectral.shape}")
    num_freqs = spectral.shape[0]
    if num_freqs < 2:
        raise ValueError(f"spectral volume needs K ≥ 2 frequencies to have any mode, got K = {num_freqs}")
    if num_frames < 2 or num_freqs > num_frames // 2 + 1:
        raise ValueError(f"num_frames must be ≥ 2 and ≥ 2·(K−1) = {2 * (num_freqs - 1)} for K = {num_freqs}, got {num_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not np.isfinite(spectral).all():
        raise ValueError("spectral volume contains NaN or inf")
    bins = np.arange(1, num_freqs)
    weight = np.where(2 * bins == num_frames, 1.0, 2.0) / num_frames
    s = spectral[1:].astype(np.float64)
    shapes = np.stack([s[:, 0] + 1j * s[:, 1], s[:, 2] + 1j * s[:, 3]], axis=1) * weight[:, None, None, None]
    omega = 2.0 * np.pi * bins * float(fps) / num_frames
    return ModalBasis(shapes=shapes, omega=omega, bins=bins)


def shapes_at(basis: ModalBasis, point: tuple[float, float]) -> np.ndarray:
    """``(M, 2)`` complex mode shapes at ``point = (x, y)`` in pixels, bilinearly interpolated."""
    x, y = (float(v) for v in point)
    height, width = basis.size
    if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
        raise ValueError(f"point ({x:g}, {y:g}) lies outside the image; x must be in [0, {width - 1}], y in [0, {height - 1}]")
    x0, y0 = min(int(x), max(width - 2, 0)), min(int(y), max(height - 2, 0))
    x1, y1 = min(x0 + 1, width - 1), min(y0 + 1, height - 1)
    ax, ay = x - x0, y - y0
    s = basis.shapes
    return ((1 - ay) * ((1 - ax) * s[..., y0, x0] + ax * s[..., y0, x1])
            + ay * ((1 - ax) * s[..., y1, x0] + ax * s[..., y1, x1]))


def modal_force(basis: ModalBasis, point: tuple[float, float], force: tuple[float, float]) -> np.ndarray:
    """``(M,)`` complex modal forces ``f_k = φ_k(p)ᴴ·d`` for force ``d = (dx, dy)`` at ``point``."""
    d = np.asarray(force, dtype=np.float64)
    if d.shape != (2,) or not np.isfinite(d).all():
        raise ValueError(f"force must be two finite numbers (dx, dy), got {force!r}")
    return np.conj(shapes_at(basis, point)) @ d


def force_for_pull(basis: ModalBasis, point: tuple[float, float], pull: tuple[float, float], mass: float = 1.0) -> np.ndarray:
    """``(2,)`` the force whose static deflection moves ``point`` by ``pull`` (px).

    The deflection at p under force d is ``C·d`` with the real symmetric compliance
    ``C = Re Σ_k φ_k(p)·φ_k(p)ᴴ / (m·ω_k²)``; d solves it in the least-squares, minimum-norm sense
    (a point that can only move sideways follows the sideways part of the pull).

    Directions in which p is stiffer than ``MIN_COMPLIANCE`` times the image's most compliant point
    (``tr C``) are treated as rigid, and a point that is that stiff in every direction is refused:
    pulling an (almost) motionless point would need a huge force that flings everything else.
    """
    phi = shapes_at(basis, point)  # (M, 2)
    compliance = np.real(np.einsum("ki,kj,k->ij", phi, np.conj(phi), 1.0 / (mass * basis.omega**2)))
    everywhere = np.einsum("kchw,k->hw", np.abs(basis.shapes) ** 2, 1.0 / (mass * basis.omega**2))
    floor = MIN_COMPLIANCE * float(everywhere.max())
    values, vectors = np.linalg.eigh(compliance)
    keep = values > floor
    if not keep.any():
        x, y = point
        ratio = math.sqrt(max(np.trace(compliance), 0.0) / max(float(everywhere.max()), 1e-300))
        raise ValueError(f"point ({x:g}, {y:g}) barely moves in this motion ({ratio:.1%} of the most mobile "
                         "point's amplitude); pull a point on something that moves")
    v = vectors[:, keep]
    return v @ ((v.T @ np.asarray(pull, dtype=np.float64)) / values[keep])


def substeps_for(omega: np.ndarray, fps: float, damping: float) -> int:
    """Sub-steps per frame so that ``ω_max·h·max(1, ξ) ≤ 0.002`` (h = 1/(fps·n))."""
    return max(1, math.ceil(float(np.max(omega)) * max(1.0, damping) / (fps * ACCURACY)))


def step_matrix(omega: np.ndarray, damping: float, h: float) -> np.ndarray:
    """``(M, 2, 2)`` one semi-implicit Euler step acting on ``(q, v)``: ``v' = (1−2ξωh)v − hω²q``, ``q' = q + h·v'``."""
    c = 1.0 - 2.0 * damping * omega * h
    a = np.empty((len(omega), 2, 2))
    a[:, 0, 0] = 1.0 - (h * omega) ** 2
    a[:, 0, 1] = h * c
    a[:, 1, 0] = -h * omega**2
    a[:, 1, 1] = c
    return a


def integrate(omega: np.ndarray, q0: np.ndarray, v0: np.ndarray, num_frames: int, fps: float,
              damping: float = 0.1, substeps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Free motion of the modal oscillators, sampled at every frame.

    Args:
        omega: ``(M,)`` rad/s. q0, v0: ``(M,)`` complex initial coordinates and velocities.
        num_frames: frames to return (frame 0 is the initial state). fps: frames per second.
        damping: ξ ≥ 0, the damping ratio of every mode. substeps: per frame (default
            :func:`substeps_for`); too few for stability (``ωh ≥ 2`` or ``2ξωh ≥ 1``) is an error.

    Returns:
        ``(q, v)``, each ``(T, M)`` complex: ``q_k(t/fps)`` and ``q̇_k(t/fps)``.
    """
    omega = np.asarray(omega, dtype=np.float64)
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not damping >= 0:
        raise ValueError(f"damping must be ≥ 0 (a damping ratio ξ; 0 = no damping), got {damping}")
    substeps = substeps_for(omega, fps, damping) if substeps is None else int(substeps)
    h = 1.0 / (fps * substeps)
    if substeps < 1 or (omega * h).max(initial=0) >= 2 or (2 * damping * omega * h).max(initial=0) >= 1:
        raise ValueError(f"{substeps} sub-steps per frame are unstable for ω = {omega.max():.3g} rad/s, ξ = {damping}; use more")
    propagate = np.linalg.matrix_power(step_matrix(omega, damping, h), substeps)  # (M, 2, 2)
    qs = np.empty((num_frames, len(omega)), np.complex128)
    vs = np.empty_like(qs)
    q, v = np.asarray(q0, np.complex128), np.asarray(v0, np.complex128)
    for t in range(num_frames):
        qs[t], vs[t] = q, v
        q, v = propagate[:, 0, 0] * q + propagate[:, 0, 1] * v, propagate[:, 1, 0] * q + propagate[:, 1, 1] * v
    return qs, vs


def displacement(basis: ModalBasis, q: np.ndarray) -> np.ndarray:
    """``(T, 2, H, W)`` float32 displacement ``Re Σ_k φ_k(p)·q_k(t)`` of coordinates ``q (T, M)``.

    ``Re(q·φ) = Re q·Re φ − Im q·Im φ``: one float32 product ``(T, 2M) @ (2M, 2HW)``.
    """
    height, width = basis.size
    flat = basis.shapes.reshape(len(basis.omega), -1)
    modes = np.concatenate([flat.real, flat.imag]).astype(np.float32)
    coords = np.concatenate([q.real, -q.imag], axis=1).astype(np.float32)
    return (coords @ modes).reshape(len(q), 2, height, width)


def simulate(spectral: np.ndarray, point: tuple[float, float], force: tuple[float, float], num_frames: int,
             fps: float, damping: float = 0.1, mass: float = 1.0, impulse: bool = True,
             spectral_frames: int | None = None, spectral_fps: float | None = None,
             substeps: int | None = None) -> np.ndarray:
    """Response of the scene to a force ``d = force`` at pixel ``point = (x, y)`` (§6, Eq. 6).

    Args:
        spectral: ``(K, 4, H, W)`` spectral volume (px, denormalized).
        point: ``(x, y)`` in pixels of the spectral volume's grid. force: ``(dx, dy)``.
        num_frames: frames to simulate. fps: frame rate of the output.
        damping: damping ratio ξ ≥ 0 of every mode. mass: modal mass m > 0.
        impulse: True: a flick, ``q̇(0) = f/m``; False: pulled by the force and released at τ = 0.
        spectral_frames, spectral_fps: T and frame rate of the clip the spectral volume was computed
            from (they define ω_k = 2π·k·spectral_fps/spectral_frames); default num_frames and fps.
        substeps: sub-steps per frame (default: enough for ω_max·h ≤ 0.002).

    Returns:
        ``(T, 2, H, W)`` float32 trajectories in pixels.
    """
    if not mass > 0:
        raise ValueError(f"mass must be positive, got {mass}")
    basis = modal_basis(spectral, spectral_frames or num_frames, spectral_fps or fps)
    f = modal_force(basis, point, force) / mass
    zero = np.zeros_like(f)
    q0, v0 = (zero, f) if impulse else (f / basis.omega**2, zero)
    q, _ = integrate(basis.omega, q0, v0, num_frames, fps, damping, substeps)
    return displacement(basis, q)
