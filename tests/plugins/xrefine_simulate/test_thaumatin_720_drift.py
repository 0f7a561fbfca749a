"""The thaumatin-720-drift preset: a 720-degree scan whose crystal drifts, truth per image."""

from __future__ import annotations

import copy
import hashlib
import json

import numpy as np
import pytest

from xrefine.config import build_config
from xrefine.io import read_experiments
from xrefine.models import cell_parameters, reciprocal_B_from_metric
from xrefine.predict import predict_experiments
from xrefine.refine import build_predictors
from xrefine.selection import select_observations
from xrefine.simulation import observe, simulate

import xrefine.plugins
from xrefine.geometry import rotation_matrices, rotation_matrix
from xrefine_simulate.presets import (
    DRIFT_CELL_GROWTH,
    Preset,
    gauge_fixed_wobble,
    thaumatin_720_drift,
    thaumatin_sweep,
    truncate_scan,
)

N_IMAGES = 7200


@pytest.fixture(scope="module")
def truth():
    return thaumatin_720_drift(0)


def short_truth(seed, n_images=300):
    return truncate_scan(thaumatin_720_drift(seed), n_images)


def cells_and_U(A):
    """Cell parameters (n, 6) and orientations U (n, 3, 3) of setting matrices A (n, 3, 3)."""
    cells = np.array([cell_parameters(np.linalg.inv(a)) for a in A])
    U = []
    for a in A:
        G = a.T @ a
        B = reciprocal_B_from_metric(np.array([G[0, 0], G[1, 1], G[2, 2], G[0, 1], G[0, 2], G[1, 2]]))
        U.append(a @ np.linalg.inv(B))
    return cells, np.array(U)


def rotation_angle(R):
    return np.arccos(np.clip((np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0))


def test_registered():
    presets = xrefine.plugins.registrations("xrefine_simulation_presets")
    assert "thaumatin-720-drift" in presets
    assert presets["thaumatin-720-drift"].build is thaumatin_720_drift


def test_build(truth):
    (expt,) = truth.experiments
    assert expt.scan.image_range == (1, N_IMAGES) and expt.scan.oscillation == (0.0, 0.1)
    assert all(len(v) == N_IMAGES for v in expt.scan.properties.values())
    A = expt.crystal.A_at_scan_points
    assert A.shape == (N_IMAGES + 1, 3, 3)
    # the static crystal is the state at the scan start
    np.testing.assert_allclose(expt.crystal.A, A[0], rtol=0, atol=1e-16)
    np.testing.assert_allclose(expt.crystal.unit_cell, [57.8, 57.8, 150.2, 90, 90, 90], atol=1e-9)
    assert expt.crystal.space_group_hall_symbol == " P 4abw 2nw"  # P 41 21 2
    # everything but the scan and the crystal's drift is thaumatin-sweep's; the orientation at
    # the scan start differs from the sweep's only by the wobble's (small) value there
    sweep = thaumatin_sweep(0).experiments[0]
    np.testing.assert_allclose(expt.crystal.B, sweep.crystal.B, rtol=0, atol=1e-15)
    assert 0 < rotation_angle(expt.crystal.U @ sweep.crystal.U.T) < 1e-3
    assert expt.identifier == sweep.identifier
    np.testing.assert_array_equal(expt.beam.s0, sweep.beam.s0)
    np.testing.assert_array_equal(expt.detector[0].d, sweep.detector[0].d)
    assert truth.d_min == 2.3
    json.dumps(truth.extra)
    assert truth.extra["static_model"].startswith("scan start")


def test_drift_is_smooth_and_of_the_stated_size(truth):
    expt = truth.experiments[0]
    cells, U = cells_and_U(expt.crystal.A_at_scan_points)
    a, b, c = cells[:, 0], cells[:, 1], cells[:, 2]
    # tetragonal throughout
    np.testing.assert_allclose(a, b, rtol=1e-13)
    np.testing.assert_allclose(cells[:, 3:], 90.0, atol=1e-9)
    # a grows by 0.3 %, c by 0.2 %, monotonically, not linearly
    assert a[-1] / a[0] - 1 == pytest.approx(DRIFT_CELL_GROWTH["a"], rel=1e-9) and DRIFT_CELL_GROWTH["a"] == 0.003
    assert c[-1] / c[0] - 1 == pytest.approx(DRIFT_CELL_GROWTH["c"], rel=1e-9)
    assert np.all(np.diff(a) > 0) and np.all(np.diff(c) >= 0)
    mid = N_IMAGES // 2
    assert abs((a[mid] - a[0]) / (a[-1] - a[0]) - 0.5) > 0.1
    # smooth: second differences per image at the level of the drift's curvature only
    assert np.abs(np.diff(np.log(a), 2)).max() < 1e-9
    assert np.abs(np.diff(np.log(c), 2)).max() < 1e-9
    # orientation: a proper rotation at every scan point, a wobble of about 2 mrad from the start
    np.testing.assert_allclose(U @ U.transpose(0, 2, 1), np.broadcast_to(np.eye(3), U.shape), atol=1e-13)
    np.testing.assert_allclose(np.linalg.det(U), 1.0, atol=1e-13)
    wobble = rotation_angle(U @ U[0].T)
    assert 1.5e-3 < wobble.max() < 4.0e-3
    assert wobble.max() * 1e3 == pytest.approx(truth.extra["wobble_mrad_max"], abs=1e-3)
    step = rotation_angle(U[1:] @ U[:-1].transpose(0, 2, 1))
    assert step.max() < 1e-5  # rad per image: slow
    # smooth: the image-to-image rotation changes by far less than itself
    w = np.array([np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / 2 for R in U[1:] @ U[:-1].transpose(0, 2, 1)])
    assert np.abs(np.diff(w, axis=0)).max() < 1e-8


def test_truncate_scan_cuts_the_scan_points():
    t = short_truth(0, 300)
    e = t.experiments[0]
    assert e.scan.num_images == 300 and e.crystal.A_at_scan_points.shape == (301, 3, 3)
    np.testing.assert_array_equal(e.crystal.A_at_scan_points, thaumatin_720_drift(0).experiments[0].crystal.A_at_scan_points[:301])


def test_short_variant_counts_and_determinism():
    runs = []
    for seed in (0, 0, 1):
        t = short_truth(seed)
        predicted = predict_experiments(t.experiments, build_predictors(t.experiments), t.d_min)
        table, outliers = observe(t, predicted, np.random.default_rng([seed, 1]))
        runs.append((predicted, table, outliers))
    (p0, t0, o0), (p1, t1, o1), (p2, _, _) = runs
    # 30 degrees of ~680 000 predictions over 720 degrees
    assert 25_000 < p0.nrows < 32_000
    assert p0.nrows - 200 < t0.nrows <= p0.nrows
    for key in ("miller_index", "xyzcal.px", "s1", "entering"):
        np.testing.assert_array_equal(p0[key], p1[key])
    np.testing.assert_array_equal(t0["xyzobs.mm.value"], t1["xyzobs.mm.value"])
    np.testing.assert_array_equal(o0, o1)
    assert p2.nrows != p0.nrows or not np.array_equal(p2["xyzcal.px"], p0["xyzcal.px"])


def test_full_preset_keeps_300000_after_subsampling(truth):
    """DIALS-style subsampling of the 2-turn scan keeps half the reflections: >= 300 000."""
    predicted = predict_experiments(truth.experiments, build_predictors(truth.experiments), truth.d_min)
    assert 650_000 < predicted.nrows < 720_000
    table, _ = observe(truth, predicted, np.random.default_rng([0, 1]))
    _, info = select_observations(truth.experiments, table, build_config(), "simulated")
    assert info["n_selected"] >= 300_000


def test_simulate_is_deterministic(tmp_path, monkeypatch):
    """`simulate` end to end on a 30-degree cut of the preset: the same files for the same seed,
    the truth per image written as A_at_scan_points."""
    real = xrefine.plugins.registrations

    def registrations(hook_name):
        out = real(hook_name)
        if hook_name == "xrefine_simulation_presets":
            out = dict(out, **{"drift-short": Preset("cut", lambda seed: short_truth(seed))})
        return out

    monkeypatch.setattr(xrefine.plugins, "registrations", registrations)
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        simulate("drift-short", str(out), seed=4)
        digests.append({f: hashlib.sha256((out / f).read_bytes()).hexdigest()
                        for f in ("truth.expt", "start.expt", "observed.refl", "simulation.json")})
    assert digests[0] == digests[1]
    written = read_experiments(str(tmp_path / "a" / "truth.expt"))[0].crystal
    np.testing.assert_allclose(written.A_at_scan_points, short_truth(4).experiments[0].crystal.A_at_scan_points,
                               rtol=1e-15, atol=1e-18)
    facts = json.loads((tmp_path / "a" / "simulation.json").read_text())
    assert facts["static_model"].startswith("scan start") and facts["n_observed"] > 25_000


def _rotation_vectors(R):
    """Rotation vectors of a stack of small rotations (first order is enough for mrad)."""
    return np.stack([R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]], axis=1) / 2


def test_a_constant_rotation_about_the_beam_is_a_rotation_of_the_detector():
    """Why the preset fixes the gauge: turning the crystal about the beam by the same angle at
    every phi predicts exactly what turning the detector about the beam does, so a truth with
    such a component is indistinguishable from one whose detector is rotated instead."""
    t = short_truth(0, 300)
    (expt,) = t.experiments
    beam = expt.beam.direction / np.linalg.norm(expt.beam.direction)
    Q = rotation_matrix(beam, 1.5e-3)
    phi = np.deg2rad(0.1 * np.arange(301))
    R = rotation_matrices(expt.goniometer.rotation_axis, phi)
    turned = copy.deepcopy(t.experiments)
    crystal = turned[0].crystal
    crystal.A_at_scan_points = R.transpose(0, 2, 1) @ Q @ R @ crystal.A_at_scan_points
    crystal.set_A(crystal.A_at_scan_points[0])
    moved = copy.deepcopy(t.experiments)
    panel = moved[0].detector[0]
    for name in ("local_fast", "local_slow", "local_origin"):
        setattr(panel, name, Q @ getattr(panel, name))  # the detector turned by Q too
    moved[0].detector.compose()

    def predict(experiments):
        p = predict_experiments(experiments, build_predictors(experiments), t.d_min)
        h = p["miller_index"].astype(np.int64)
        order = np.lexsort((p["entering"], h[:, 2], h[:, 1], h[:, 0]))
        return h[order], p["xyzcal.px"][order]

    h0, x0 = predict(t.experiments)
    h1, x1 = predict(turned)
    h2, x2 = predict(moved)
    # the crystal's turn alone moves spots by up to ~2 px (1.5 mrad at 300 mm from the beam)
    common = min(len(h0), len(h1))
    assert np.abs(x1[:common, :2] - x0[:common, :2]).max() > 0.5
    # both turns together: the same predictions, frames included (the per-image interpolation
    # of the turned crystal is the only approximation)
    both = copy.deepcopy(turned)
    both[0].detector = moved[0].detector
    h3, x3 = predict(both)
    np.testing.assert_array_equal(h3, h0)
    np.testing.assert_allclose(x3, x0, rtol=0, atol=1e-6)


def test_the_wobble_has_no_mean_rotation_about_the_beam(truth):
    """The preset's wobble turns the crystal about the beam (in the laboratory frame) by zero
    on average over the scan, so the true detector is the one the data determine."""
    (expt,) = truth.experiments
    sweep = thaumatin_sweep(0).experiments[0]
    _, U = cells_and_U(expt.crystal.A_at_scan_points)
    phi = np.deg2rad(0.1 * np.arange(N_IMAGES + 1))
    R = rotation_matrices(expt.goniometer.rotation_axis, phi)
    lab = _rotation_vectors(R @ U @ sweep.crystal.U.T @ R.transpose(0, 2, 1))
    about_beam = lab @ (expt.beam.direction / np.linalg.norm(expt.beam.direction))
    assert np.abs(about_beam).max() > 1e-3  # it does turn about the beam, by up to ~1.5 mrad
    assert abs(about_beam.mean()) < 1e-7  # but not on average (second-order terms aside)


def test_gauge_fixed_wobble_removes_only_the_mean_turn_about_the_beam():
    rng = np.random.default_rng(3)
    phi = np.linspace(0.0, 4 * np.pi, 501)
    axis, beam = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 2.0])
    R = rotation_matrices(axis, phi)
    # noise plus a constant turn about the beam in the laboratory frame, R(phi)^T z in the datum
    omega = 1e-3 * (rng.normal(size=(501, 3)) + R.transpose(0, 2, 1)[:, :, 2])
    fixed = gauge_fixed_wobble(omega, phi, axis, beam)
    about = lambda w: np.einsum("nij,nj->ni", R, w)[:, 2]
    assert abs(about(omega).mean()) > 1e-5
    assert abs(about(fixed).mean()) < 1e-15
    # what is removed is a constant turn about the beam in the laboratory frame
    removed = np.einsum("nij,nj->ni", R, omega - fixed)
    np.testing.assert_allclose(removed[:, :2], 0.0, atol=1e-18)
    np.testing.assert_allclose(removed[:, 2], about(omega).mean(), rtol=1e-12)
    # and along the spindle nothing changes
    np.testing.assert_array_equal((omega - fixed)[:, 0], 0.0)
