"""Modal dynamics (§6, Eq. 6) against physics: closed-form damped oscillators, energy, linearity."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gid.pipeline.dynamics import (
    displacement, force_for_pull, integrate, modal_basis, shapes_at, simulate, step_matrix, substeps_for,
)
from gid.pipeline.spectral import spectral_to_trajectories

T, FPS = 40, 20.0


def random_spectral(seed=0, num_freqs=6, height=9, width=11):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((num_freqs, 4, height, width)).astype(np.float32)


def single_mode_spectral(k, height=8, width=10, num_freqs=6):
    """Only bin k moves; its complex shape varies over the image in both directions."""
    spec = np.zeros((num_freqs, 4, height, width), np.float32)
    yy, xx = np.mgrid[0:height, 0:width] / 7.0
    spec[k, 0], spec[k, 1] = 30 * np.cos(xx), 20 * np.sin(yy)
    spec[k, 2], spec[k, 3] = 10 * xx, -15 * yy
    return spec


def damped_impulse(omega, xi, v0, tau):
    wd = omega * np.sqrt(1 - xi**2)
    return v0 * np.exp(-xi * omega * tau) * np.sin(wd * tau) / wd


def damped_release(omega, xi, q0, tau):
    wd = omega * np.sqrt(1 - xi**2)
    return q0 * np.exp(-xi * omega * tau) * (np.cos(wd * tau) + xi * omega / wd * np.sin(wd * tau))


def test_unit_modal_coordinates_replay_the_predicted_motion():
    """Shape normalisation: q_k = exp(iω_k t/fps) gives irfft(S) minus its DC offset S_0/T."""
    spec = random_spectral()
    basis = modal_basis(spec, T, FPS)
    tau = np.arange(T) / FPS
    q = np.exp(1j * np.outer(tau, basis.omega))
    replay = displacement(basis, q)
    expected = spectral_to_trajectories(spec.astype(np.float64), T) - spec[0, [0, 2]] / T
    np.testing.assert_allclose(replay, expected, atol=1e-4)
    np.testing.assert_allclose(basis.omega, 2 * np.pi * np.arange(1, 6) * FPS / T)


@pytest.mark.parametrize("xi", [0.0, 0.05, 0.3])
def test_single_mode_impulse_is_the_closed_form_damped_sinusoid(xi):
    """Error against q(τ) = (f/m)·e^{−ξωτ}·sin(ω_d τ)/ω_d: below 0.1 % of the response's peak."""
    k, point, force, mass = 3, (4.3, 2.6), (1.5, -0.7), 2.0
    spec = single_mode_spectral(k)
    basis = modal_basis(spec, T, FPS)
    phi = basis.shapes[k - 1]
    out = simulate(spec, point, force, 200, FPS, damping=xi, mass=mass, spectral_frames=T)
    f = np.conj(shapes_at(basis, point)[k - 1]) @ np.array(force)
    q = damped_impulse(basis.omega[k - 1], xi, f / mass, np.arange(200) / FPS)
    expected = np.real(phi[None] * q[:, None, None, None])
    err = np.abs(out - expected).max() / np.abs(expected).max()
    assert err < 1e-3, err


def test_single_mode_frequency_and_decay_rate_measured_from_the_response():
    """Zero crossings give ω_d, successive peaks the decay rate ξω, both within 0.03 % (measured 0.008 %)."""
    omega, xi, fps, n = 2 * np.pi * 1.5, 0.08, 1000.0, 6000  # fine frame rate to locate crossings
    q, _ = integrate(np.array([omega]), np.array([0j]), np.array([1 + 0j]), n, fps, xi)
    x = q[:, 0].real
    tau = np.arange(n) / fps
    sign_change = np.nonzero(np.diff(np.sign(x[1:])) != 0)[0] + 1
    crossings = tau[sign_change] - x[sign_change] / (x[sign_change + 1] - x[sign_change]) / fps
    wd_measured = np.pi / np.diff(crossings).mean()
    wd = omega * np.sqrt(1 - xi**2)
    assert abs(wd_measured / wd - 1) < 3e-4
    peaks = [np.abs(x[a:b]).max() for a, b in zip(sign_change[:-1], sign_change[1:])]
    rate = -np.polyfit(np.arange(len(peaks)) * np.pi / wd, np.log(peaks), 1)[0]
    assert abs(rate / (xi * omega) - 1) < 3e-4


def test_release_starts_at_the_static_deflection_and_follows_the_closed_form():
    k, point, force, xi = 2, (6.0, 3.0), (0.4, 0.9), 0.1
    spec = single_mode_spectral(k)
    basis = modal_basis(spec, T, FPS)
    omega = basis.omega[k - 1]
    f = np.conj(shapes_at(basis, point)[k - 1]) @ np.array(force)
    out = simulate(spec, point, force, 120, FPS, damping=xi, impulse=False, spectral_frames=T)
    q = damped_release(omega, xi, f / omega**2, np.arange(120) / FPS)
    expected = np.real(basis.shapes[k - 1][None] * q[:, None, None, None])
    assert np.abs(out - expected).max() < 1e-3 * np.abs(expected).max()


def test_pull_moves_the_point_by_the_drag():
    spec = random_spectral(1)
    basis = modal_basis(spec, T, FPS)
    point, pull = (5.0, 4.0), (2.0, -1.5)
    force = force_for_pull(basis, point, pull, mass=3.0)
    out = simulate(spec, point, force, 3, FPS, mass=3.0, impulse=False, spectral_frames=T)
    np.testing.assert_allclose(out[0, :, 4, 5], pull, atol=1e-4)


def test_pull_of_a_point_that_only_moves_sideways_follows_the_sideways_part():
    spec = random_spectral(2)
    spec[:, 2:] = 0  # no vertical motion anywhere
    basis = modal_basis(spec, T, FPS)
    force = force_for_pull(basis, (3.0, 3.0), (1.2, 5.0))
    out = simulate(spec, (3.0, 3.0), force, 2, FPS, impulse=False, spectral_frames=T)
    np.testing.assert_allclose(out[0, :, 3, 3], [1.2, 0.0], atol=1e-4)


@pytest.mark.parametrize("impulse", [True, False])
def test_zero_force_gives_no_motion(impulse):
    out = simulate(random_spectral(), (3, 3), (0.0, 0.0), 30, FPS, impulse=impulse, spectral_frames=T)
    assert out.shape == (30, 2, 9, 11) and out.dtype == np.float32
    assert not out.any()


@settings(max_examples=25, deadline=None)
@given(a=st.floats(-5, 5), b=st.floats(-5, 5), x=st.floats(0, 10), y=st.floats(0, 8),
       impulse=st.booleans())
def test_response_is_linear_in_the_force(a, b, x, y, impulse):
    spec = random_spectral(3)
    d1, d2 = np.array([0.7, -1.1]), np.array([-0.2, 0.5])
    run = lambda d: simulate(spec, (x, y), d, 12, FPS, damping=0.1, impulse=impulse, spectral_frames=T).astype(np.float64)
    combined = run(a * d1 + b * d2)
    expected = a * run(d1) + b * run(d2)
    assert np.abs(combined - expected).max() <= 1e-4 * (1 + np.abs(expected).max())


def modal_energy(omega, q, v):
    """``(T,)`` Σ_k ½(|q̇_k|² + ω_k²|q_k|²) (unit mass)."""
    return 0.5 * (np.abs(v) ** 2 + omega**2 * np.abs(q) ** 2).sum(axis=1)


def test_energy_decays_with_damping_and_never_grows():
    basis = modal_basis(random_spectral(4), T, FPS)
    rng = np.random.default_rng(0)
    v0 = rng.standard_normal(5) + 1j * rng.standard_normal(5)
    q0 = rng.standard_normal(5) + 1j * rng.standard_normal(5)
    fps, xi = 200.0, 0.05
    q, v = integrate(basis.omega, q0, v0, 4000, fps, xi)
    energy = modal_energy(basis.omega, q, v)
    h = 1 / (fps * substeps_for(basis.omega, fps, xi))
    # Sampled energy may exceed a decreasing curve only by the O(ωh) wobble of symplectic Euler.
    slack = 1 + basis.omega.max() * h
    assert (energy[1:] <= np.minimum.accumulate(energy)[:-1] * slack).all()
    assert energy[-1] < 0.2 * energy[0]
    # Each mode's energy envelope decays as e^{−2ξωτ}: compare windows one slowest period apart.
    period = int(round(fps * 2 * np.pi / basis.omega.min()))
    window_max = np.array([energy[i:i + period].max() for i in range(0, len(energy) - period, period)])
    assert (np.diff(window_max) < 0).all()


def test_undamped_modes_keep_their_modified_energy():
    """ξ = 0: v² + ω²q² − hω²·q·v is conserved exactly by semi-implicit Euler (forward Euler grows)."""
    omega = np.array([3.0, 40.0])
    fps = 10.0
    n = substeps_for(omega, fps, 0.0)
    h = 1 / (fps * n)
    q, v = integrate(omega, np.array([1.0 + 0j, 0.2j]), np.array([0.5 + 0j, 1.0 + 0j]), 300, fps, 0.0)
    modified = (np.abs(v) ** 2 + omega**2 * np.abs(q) ** 2 - h * omega**2 * np.real(q * np.conj(v))).sum(axis=1)
    np.testing.assert_allclose(modified, modified[0], rtol=1e-9)


def test_stiff_mode_stays_bounded():
    """A 500 Hz mode at 30 fps (ω·Δt ≈ 105 per frame) is sub-stepped, not blown up."""
    omega = np.array([2 * np.pi * 500.0])
    q, v = integrate(omega, np.array([0j]), np.array([1 + 0j]), 90, 30.0, damping=0.0)
    assert np.isfinite(q).all()
    assert np.abs(q).max() <= 1.001 / omega[0]
    assert np.abs(v).max() <= 1.001


def test_too_few_substeps_is_refused():
    with pytest.raises(ValueError, match="unstable"):
        integrate(np.array([2 * np.pi * 500.0]), np.array([0j]), np.array([1 + 0j]), 5, 30.0, substeps=10)


def test_frame_propagator_equals_the_substep_loop():
    """A^n between frames is the same explicit Euler trajectory as n single steps (reference loop)."""
    omega, xi, fps = np.array([2.0, 17.0, 60.0]), 0.2, 25.0
    n = substeps_for(omega, fps, xi)
    q0, v0 = np.array([0.3, -1.0, 2.0 + 1j]), np.array([1.0, 0.5j, -0.25])
    q, v = integrate(omega, q0, v0, 8, fps, xi)
    a = step_matrix(omega, xi, 1 / (fps * n))
    state = np.stack([q0, v0]).astype(np.complex128)  # (2, M)
    for frame in range(8):
        np.testing.assert_allclose(state[0], q[frame], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(state[1], v[frame], rtol=1e-9, atol=1e-12)
        for _ in range(n):
            state = np.einsum("mij,jm->im", a, state)


@pytest.mark.parametrize("kwargs,message", [
    (dict(point=(20, 3)), "outside the image"),
    (dict(damping=-0.1), "damping must be"),
    (dict(mass=0.0), "mass must be positive"),
    (dict(force=(1.0, np.nan)), "force must be two finite"),
    (dict(spectral=np.zeros((6, 2, 9, 11))), r"shape \(K, 4, H, W\)"),
    (dict(spectral_frames=6), "num_frames must be"),
])
def test_bad_input_names_the_problem(kwargs, message):
    args = dict(spectral=random_spectral(), point=(3, 3), force=(1.0, 0.0), num_frames=T, fps=FPS)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        simulate(**args)


def test_mode_frequencies_come_from_the_source_clip_not_the_output_rate():
    """A 60 fps output of a 30 fps spectral volume rings at the same Hz, sampled twice as often."""
    spec = single_mode_spectral(2)
    slow = simulate(spec, (4, 4), (1.0, 0.5), 40, 30.0, damping=0.05, spectral_frames=T, spectral_fps=30.0)
    fast = simulate(spec, (4, 4), (1.0, 0.5), 80, 60.0, damping=0.05, spectral_frames=T, spectral_fps=30.0)
    np.testing.assert_allclose(fast[::2], slow, atol=1e-4 * np.abs(slow).max())


def test_pulling_a_motionless_point_is_refused():
    spec = single_mode_spectral(2)
    spec[:, :, 5:, 6:] = 0  # a static corner
    basis = modal_basis(spec, T, FPS)
    with pytest.raises(ValueError, match=r"point \(8, 6\) barely moves"):
        force_for_pull(basis, (8, 6), (3.0, 0.0))
    assert np.isfinite(force_for_pull(basis, (2, 2), (3.0, 0.0))).all()


def test_pull_ignores_directions_in_which_the_point_is_nearly_rigid():
    """Vertical motion 10⁻³ of horizontal: a diagonal drag must not become a huge vertical force."""
    spec = random_spectral(5)
    spec[:, 2:] *= 1e-3
    basis = modal_basis(spec, T, FPS)
    force = force_for_pull(basis, (3.0, 3.0), (1.2, 5.0))
    out = simulate(spec, (3.0, 3.0), force, 2, FPS, impulse=False, spectral_frames=T)
    assert abs(out[0, 0, 3, 3] - 1.2) < 0.05 and abs(out[0, 1, 3, 3]) < 0.05
    assert np.abs(out[0]).max() < 100 * 1.2
