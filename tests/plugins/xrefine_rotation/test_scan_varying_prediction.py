"""Full-scan prediction with scan-varying models (`predict_all` on experiments whose crystal,
beam or goniometer carries scan points; MATH.md 2.5).

The reference here is a literal transcription of DIALS's ScanVaryingReflectionPredictor: a loop
over images, every candidate index tested at the image's two ends, alpha from DIALS's quadratic
root choice.  The module under test finds the same crossings without visiting every image.
"""

from __future__ import annotations

import numpy as np
import pytest

from xrefine.errors import InputError
from xrefine.geometry import rotation_matrices, rotation_matrix, unit

from xrefine_rotation import RotationPredictor, predict_all
from xrefine_rotation.full_scan import miller_indices_to
from xrefine_rotation.symmetry import space_group_ops


# ------------------------------------------------------------------------------------------
# the reference: DIALS's per-image algorithm, written out plainly
def _solve_quad(a, b, c):
    """reeke_detail::solve_quad: the real roots in DIALS's order."""
    disc = b * b - 4 * a * c
    if disc > 0:
        sign = 1.0 if b >= 0 else -1.0
        q = -0.5 * (b + sign * np.sqrt(disc))
        roots = []
        if a != 0:
            roots.append(q / a)
        if q != 0:
            roots.append(c / q)
        return roots
    if disc == 0:
        return [-b / (2 * a)] * 2
    return []


def _root_in_unit_interval(roots):
    for r in roots[:2]:
        if 0.0 <= r <= 1.0:
            return r
    return None


def reference_predictions(e, d_min, A, s0, S, varying_models):
    """{(h, k, l, image): (entering, s1, phi)} for rays that hit the (single) panel."""
    scan, gonio = e.scan, e.goniometer
    N = scan.num_images
    phi_k = scan.angle_from_frame(scan.array_range[0] + np.arange(N + 1))
    M = S @ rotation_matrices(gonio.rotation_axis, phi_k) @ gonio.fixed_rotation @ A
    stretch = max(np.linalg.norm(A[N // 2] @ np.linalg.inv(Ak), 2) for Ak in A)
    hkl = miller_indices_to(A[N // 2], d_min / stretch / 1.01)
    hkl = hkl[~space_group_ops(e.crystal.space_group_hall_symbol).systematic_absences(hkl)].astype(float)
    panel = e.detector[0]
    w, h = panel.size_mm
    start, width = scan.oscillation_rad
    out = {}
    for t in range(N):
        r1, r2 = hkl @ M[t].T, hkl @ M[t + 1].T
        s0a, s0b = s0[t], s0[t + 1]
        starts_outside = np.linalg.norm(s0a + r1, axis=1) - np.linalg.norm(s0a) >= 0.0
        ends_outside = np.linalg.norm(s0b + r2, axis=1) - np.linalg.norm(s0b) >= 0.0
        inside_res = np.einsum("ij,ij->i", r1, r1) <= 1.0 / d_min**2
        for i in np.flatnonzero((starts_outside != ends_outside) & inside_res):
            a1, b1, dr = r1[i], r2[i], r2[i] - r1[i]
            alpha1 = _root_in_unit_interval(_solve_quad(dr @ dr, 2.0 * (s0a + a1) @ dr, a1 @ a1 + 2.0 * s0a @ a1))
            if alpha1 is None:
                continue
            if varying_models:
                alpha2 = _root_in_unit_interval(_solve_quad(dr @ dr, -2.0 * (s0b + b1) @ dr, b1 @ b1 + 2.0 * s0b @ b1))
                if alpha2 is None:
                    continue
                alpha = alpha1 / (alpha1 + alpha2)
                ua, ub = unit(s0a), unit(s0b)
                s0x = 0.5 * (np.linalg.norm(s0a) + np.linalg.norm(s0b)) * (ua + alpha * (ub - ua))
            else:
                alpha, s0x = alpha1, s0a
            s1 = a1 + alpha * dr + s0x
            v = panel.D @ s1
            if v[2] <= 0 or not (0 <= v[0] / v[2] <= w and 0 <= v[1] / v[2] <= h):
                continue
            out[tuple(int(x) for x in hkl[i]) + (t,)] = (bool(starts_outside[i]), s1, start + (t + alpha) * width)
    return out


def assert_matches_reference(e, d_min, table, A, s0, S, varying_models):
    ref = reference_predictions(e, d_min, A, s0, S, varying_models)
    x0 = e.scan.array_range[0]
    # the image of each prediction: floor(z), except a crossing exactly at the image end
    t = np.minimum(np.floor(table["xyzcal.px"][:, 2] - x0).astype(int), e.scan.num_images - 1)
    got = {tuple(h) + (int(i),): row for row, (h, i) in enumerate(zip(table["miller_index"].tolist(), t))}
    assert len(got) == table.nrows
    assert set(got) == set(ref)
    assert len(ref) > 300
    rows = np.array([got[k] for k in ref])
    np.testing.assert_array_equal(table["entering"][rows], [v[0] for v in ref.values()])
    np.testing.assert_allclose(table["s1"][rows], [v[1] for v in ref.values()], rtol=0, atol=1e-13)
    np.testing.assert_allclose(table["xyzcal.mm"][rows, 2], [v[2] for v in ref.values()], rtol=0, atol=1e-12)


def constant(value, n):
    return np.broadcast_to(value, (n,) + np.shape(value)).copy()


def drifting_A(e, rng, cell_drift=0.01, wobble_mrad=10.0, jitter_mrad=0.05):
    """A at every scan point: a smooth anisotropic cell drift, a smooth wobble of the orientation
    and an image-to-image jitter (not smooth at all), to stress the search windows."""
    n = e.scan.num_images + 1
    x = np.linspace(0.0, 1.0, n)
    A0 = e.crystal.A
    axes = [unit(rng.normal(size=3)) for _ in range(2)]
    out = np.empty((n, 3, 3))
    for k in range(n):
        stretch = np.diag([1 + cell_drift * x[k], 1 - 0.5 * cell_drift * x[k] ** 2, 1 + cell_drift * np.sin(3 * x[k])])
        R = rotation_matrix(axes[0], 1e-3 * wobble_mrad * np.sin(2 * np.pi * x[k]))
        R = rotation_matrix(axes[1], 1e-3 * wobble_mrad * np.sin(5 * x[k])) @ R
        R = rotation_matrix(unit(rng.normal(size=3)), 1e-3 * jitter_mrad * rng.normal()) @ R
        out[k] = R @ A0 @ np.linalg.inv(stretch)
    return out


def keyed(table):
    return {tuple(h) + (bool(en),): i for i, (h, en) in enumerate(zip(table["miller_index"].tolist(), table["entering"]))}


def assert_close_to_static(static, varying, e):
    """The scan-varying prediction with constant models is the static one up to DIALS's chord
    approximation (the relp moves along the straight line between an image's ends, not the arc):
    the same reflections, a sub-0.005 px / frame difference in general, and agreement where the
    chord meets the arc, at the image boundaries."""
    ks, kv = keyed(static), keyed(varying)
    assert set(ks) == set(kv) and len(ks) == static.nrows > 300
    a = np.array([ks[k] for k in ks])
    b = np.array([kv[k] for k in ks])
    d = varying["xyzcal.px"][b] - static["xyzcal.px"][a]
    assert np.abs(d).max() < 5e-3
    z = static["xyzcal.px"][a, 2]
    frac = z - np.round(z)
    boundary = np.abs(frac) < 2e-3
    assert boundary.sum() >= 1
    assert np.abs(d[boundary]).max() < 2e-5
    np.testing.assert_array_equal(varying["panel"][b], static["panel"][a])


# ------------------------------------------------------------------------------------------
def test_constant_crystal_scan_points_equal_the_static_prediction(sim):
    e = sim.make_experiment(image_range=(1, 900))
    static = predict_all(e, 1.6)
    e.crystal.A_at_scan_points = constant(e.crystal.A, e.scan.num_images + 1)
    varying = predict_all(e, 1.6)
    assert_close_to_static(static, varying, e)
    # exactly on the chord between the ends of its image (the static setting matrices there)
    N, x0 = e.scan.num_images, e.scan.array_range[0]
    z = varying["xyzcal.px"][:, 2] - x0
    t = np.minimum(np.floor(z).astype(int), N - 1)
    alpha = z - t
    phi_k = e.scan.angle_from_frame(x0 + np.arange(N + 1))
    M = rotation_matrices(e.goniometer.rotation_axis, phi_k) @ e.crystal.A
    h = varying["miller_index"].astype(float)
    r1, r2 = np.einsum("nij,nj->ni", M[t], h), np.einsum("nij,nj->ni", M[t + 1], h)
    chord = e.beam.s0 + r1 + alpha[:, None] * (r2 - r1)
    np.testing.assert_allclose(varying["s1"], chord, rtol=0, atol=1e-9)


@pytest.mark.parametrize("lattice", ["triclinic", "hexagonal"])
def test_drifting_crystal_matches_dials_per_image_algorithm(sim, lattice):
    rng = np.random.default_rng(7)
    e = sim.make_experiment(lattice=lattice, image_range=(1, 1200))
    A = drifting_A(e, rng)
    e.crystal.A_at_scan_points = A
    d_min = 1.8
    table = predict_all(e, d_min)
    n = e.scan.num_images + 1
    assert_matches_reference(e, d_min, table, A, constant(e.beam.s0, n), constant(e.goniometer.setting_rotation, n), False)

    # every prediction satisfies the Ewald condition with the setting matrix interpolated to its alpha
    x0 = e.scan.array_range[0]
    z = table["xyzcal.px"][:, 2] - x0
    t = np.minimum(np.floor(z).astype(int), n - 2)
    alpha = z - t
    phi_k = e.scan.angle_from_frame(x0 + np.arange(n))
    M = rotation_matrices(e.goniometer.rotation_axis, phi_k) @ A
    h = table["miller_index"].astype(float)
    r = (1 - alpha)[:, None] * np.einsum("nij,nj->ni", M[t], h) + alpha[:, None] * np.einsum("nij,nj->ni", M[t + 1], h)
    s0 = e.beam.s0
    np.testing.assert_allclose(np.linalg.norm(s0 + r, axis=1), np.linalg.norm(s0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(table["s1"], s0 + r, rtol=0, atol=1e-10)
    # resolution at the image start, entering = starts outside the sphere, frames and pixels
    assert np.all(np.linalg.norm(np.einsum("nij,nj->ni", A[t], h), axis=1) <= 1 / d_min)
    r1 = np.einsum("nij,nj->ni", M[t], h)
    assert np.all((np.linalg.norm(s0 + r1, axis=1) >= np.linalg.norm(s0)) == table["entering"])
    assert np.all(np.diff(table["xyzcal.px"][:, 2]) >= 0)
    np.testing.assert_allclose(table["xyzcal.px"][:, 2], e.scan.frame_from_angle(table["xyzcal.mm"][:, 2]), atol=1e-9)
    v = table["s1"] @ e.detector[0].D.T
    np.testing.assert_allclose(table["xyzcal.mm"][:, :2], v[:, :2] / v[:, 2:], rtol=0, atol=1e-9)
    np.testing.assert_allclose(table["xyzcal.px"][:, :2], e.detector[0].mm_to_px(table["xyzcal.mm"][:, :2]), atol=1e-12)


def test_multi_turn_scan_with_drift(sim):
    """800 degrees in 1-degree images: each reflection on every turn, every crossing found."""
    rng = np.random.default_rng(3)
    e = sim.make_experiment(image_range=(1, 800), oscillation=(-30.0, 1.0))
    A = drifting_A(e, rng, cell_drift=0.005, wobble_mrad=5.0, jitter_mrad=0.2)
    e.crystal.A_at_scan_points = A
    table = predict_all(e, 2.0)
    n = e.scan.num_images + 1
    assert_matches_reference(e, 2.0, table, A, constant(e.beam.s0, n), constant(e.goniometer.setting_rotation, n), False)
    _, counts = np.unique(np.column_stack([table["miller_index"], table["entering"]]), axis=0, return_counts=True)
    assert counts.max() == 3 and counts.min() == 1  # 800 degrees: two or three turns per solution


def test_constant_beam_scan_points_honoured(sim):
    """s0_at_scan_points equal to a beam different from the static one: the static prediction
    with that beam (the static beam is ignored)."""
    e = sim.make_experiment(image_range=(1, 900))
    other_s0 = rotation_matrix([0.0, 1.0, 0.0], 0.01) @ e.beam.s0 * 1.02
    e.beam.s0_at_scan_points = constant(other_s0, e.scan.num_images + 1)
    varying = predict_all(e, 1.6)
    e.beam.s0_at_scan_points = None
    e.beam.set_s0(other_s0)
    static = predict_all(e, 1.6)
    assert_close_to_static(static, varying, e)


def test_constant_setting_rotation_scan_points_honoured(sim):
    """With the crystal at scan points too, constant goniometer scan points S predict as a
    static setting rotation S does."""
    e = sim.make_experiment(image_range=(1, 900))
    S = rotation_matrix(unit([0.3, 1.0, 0.2]), 0.05)
    e.goniometer.setting_rotation_at_scan_points = constant(S, e.scan.num_images + 1)
    e.crystal.A_at_scan_points = constant(e.crystal.A, e.scan.num_images + 1)
    varying = predict_all(e, 1.6)
    e.goniometer.setting_rotation_at_scan_points = None
    e.crystal.A_at_scan_points = None
    e.goniometer.setting_rotation = S
    static = predict_all(e, 1.6)
    assert_close_to_static(static, varying, e)


def test_goniometer_scan_points_alone_predict_statically(sim):
    """DIALS's predictor goes scan-varying only when the crystal or the beam has scan points
    (reflection_predictor.py); goniometer scan points alone are ignored, and so here."""
    e = sim.make_experiment(image_range=(1, 300))
    static = predict_all(e, 2.0)
    e.goniometer.setting_rotation_at_scan_points = constant(rotation_matrix(unit([0.3, 1.0, 0.2]), 0.05), 301)
    ignored = predict_all(e, 2.0)
    for key in ("miller_index", "panel", "entering"):
        np.testing.assert_array_equal(ignored[key], static[key])
    np.testing.assert_array_equal(ignored["xyzcal.px"], static["xyzcal.px"])


@pytest.mark.parametrize("which", ["beam", "goniometer", "all"])
def test_varying_beam_and_setting_match_dials_per_image_algorithm(sim, which):
    rng = np.random.default_rng(11)
    e = sim.make_experiment(image_range=(1, 900))
    n = e.scan.num_images + 1
    x = np.linspace(0.0, 1.0, n)
    A = drifting_A(e, rng) if which == "all" else constant(e.crystal.A, n)
    s0 = constant(e.beam.s0, n)
    S = constant(e.goniometer.setting_rotation, n)
    if which in ("beam", "all"):
        s0 = np.array([rotation_matrix([0.0, 1.0, 0.0], 3e-3 * np.sin(4 * xi)) @ e.beam.s0 * (1 + 2e-3 * xi) for xi in x])
        e.beam.s0_at_scan_points = s0
    if which in ("goniometer", "all"):
        S = rotation_matrices(unit([0.0, 1.0, 1.0]), 4e-3 * np.sin(3 * x))
        e.goniometer.setting_rotation_at_scan_points = S
        # (goniometer scan points count only with the crystal's or the beam's, as in DIALS)
        e.crystal.A_at_scan_points = A
    table = predict_all(e, 1.8)
    assert_matches_reference(e, 1.8, table, A, s0, S, True)


def test_scan_points_must_match_the_scan(sim):
    e = sim.make_experiment(image_range=(1, 100))
    e.crystal.A_at_scan_points = constant(e.crystal.A, 100)
    with pytest.raises(InputError, match="A_at_scan_points has 100 scan points .* needs 101"):
        predict_all(e, 2.0)
    e.crystal.A_at_scan_points = None
    e.beam.s0_at_scan_points = constant(e.beam.s0, 7)
    with pytest.raises(InputError, match="s0_at_scan_points"):
        RotationPredictor().predict_all(e, 2.0)
