"""Issue 3 acceptance on thaumatin-720-drift: a static model leaves a phi-dependent residual
trend, the scan-varying one removes it, and its cell and orientation at the scan points agree
with the closest the smoother can come to the true drift.

"The closest the smoother can come" is the smoother's sample values fitted by least squares to
the true curves.  That comparison needs the truth to be unique: a crystal turned about the beam
by the same angle at every phi is indistinguishable from a turned detector, so the preset's
wobble has no mean turn about the beam (docs/design-decisions.md, "Scan-varying orientation and
the detector's rotation about the beam")."""

import copy
import json

import numpy as np
import pytest

import xrefine
from xrefine.io import read_experiments, read_reflections
from xrefine.models import metric_elements_from_A, reciprocal_B_from_metric
from xrefine.predict import predict_experiments
from xrefine.refine import build_predictors
from xrefine.simulation import simulate
from xrefine_smoother.gaussian_smoother import GaussianSmoother


@pytest.fixture(scope="module")
def drift(tmp_path_factory):
    d = tmp_path_factory.mktemp("drift")
    simulate("thaumatin-720-drift", str(d), 0)
    return (read_experiments(str(d / "truth.expt")), read_experiments(str(d / "start.expt")),
            read_reflections(str(d / "observed.refl")), json.loads((d / "simulation.json").read_text()))


@pytest.fixture(scope="module")
def varying(drift):
    truth, start, table, _ = drift
    return xrefine.refine(start, table)


@pytest.fixture(scope="module")
def exact_table(drift):
    """The observed reflections with their exact true centroids (same rows, same weights)."""
    truth, _, table, _ = drift
    out = copy.copy(table)
    out.columns = dict(table.columns)
    out.types = dict(table.types)
    # observations are truth + noise: take the true centroid of every row from the simulator's
    # own prediction of the truth, matched by (Miller index, entering)
    predicted = predict_experiments(truth, build_predictors(truth), 2.3)

    def keys(t):
        h = t["miller_index"].astype(np.int64) + 512
        return ((h[:, 0] * 1024 + h[:, 1]) * 1024 + h[:, 2]) * 2 + t["entering"].astype(np.int64)

    kp, kt = keys(predicted), keys(table)
    order = np.argsort(kp)
    pos = order[np.searchsorted(kp, kt, sorter=order)]
    assert np.array_equal(kp[pos], kt)
    out["xyzobs.mm.value"] = predicted["xyzcal.mm"][pos]
    return out


@pytest.fixture(scope="module")
def exact(drift, exact_table, varying):
    """The same refinement fitted to the exact centroids of the reflections the noisy job used
    in the end: the closest the smoother can come with those reflections."""
    t = copy.copy(exact_table)
    t.columns = dict(exact_table.columns)
    t.types = dict(exact_table.types)
    flags = t["flags"].copy()
    unused = ~varying.reflections.get_flags(xrefine.Flags.used_in_refinement)
    flags[unused] |= np.uint64(xrefine.Flags.excluded_for_refinement)
    t["flags"] = flags
    # every used reflection, no subsampling (a huge reflections_per_degree keeps them all)
    return xrefine.refine(drift[1], t, outlier__algorithm="null", reflections_per_degree=1e9)


def _phi_trend(res):
    """RMS over 36-degree blocks of the mean phi residual (images) of used reflections."""
    t = res.reflections
    used = t.get_flags(xrefine.Flags.used_in_refinement)
    dz = t["xyzcal.px"][used, 2] - t["xyzobs.px.value"][used, 2]
    dx = t["xyzcal.px"][used, 0] - t["xyzobs.px.value"][used, 0]
    block = (t["xyzobs.px.value"][used, 2] // 360).astype(int)
    means = [(dz[block == b].mean(), dx[block == b].mean()) for b in np.unique(block)]
    return np.sqrt(np.mean(np.square(means), axis=0))


def test_static_leaves_a_trend_and_scan_varying_removes_it(drift, varying):
    truth, start, table, _ = drift
    static = xrefine.refine(start, table, scan_varying="false")
    r_static = static.rmsd_by_experiment[0]
    r_varying = varying.rmsd_by_experiment[0]
    # the noise is 0.2-0.3 px / images per reflection (rms 0.25)
    assert r_static["rmsd_x_px"] > 0.5 and r_static["rmsd_z_images"] > 0.4
    for k in ("rmsd_x_px", "rmsd_y_px", "rmsd_z_images"):
        assert 0.22 < r_varying[k] < 0.26, (k, r_varying[k])
    trend_static, trend_varying = _phi_trend(static), _phi_trend(varying)
    assert np.all(trend_static > 0.1), trend_static
    assert np.all(trend_varying < 0.02), trend_varying


def _samples(res, prefix):
    free = [p for p in res.parameters if not p["fixed"]]
    idx = [i for i, p in enumerate(free) if p["name"].startswith(prefix + "_sample")]
    return np.array([free[i]["value"] for i in idx]), res.covariance[np.ix_(idx, idx)]


def _euler_xyz_mrad(R):
    """(phi1, phi2, phi3) with R = Rz(phi3) Ry(phi2) Rx(phi1), in mrad, for a stack (n, 3, 3)."""
    a = np.arctan2(R[:, 2, 1], R[:, 2, 2])
    b = -np.arcsin(np.clip(R[:, 2, 0], -1, 1))
    c = np.arctan2(R[:, 1, 0], R[:, 0, 0])
    return 1000 * np.column_stack([a, b, c])


def _curves(res, names, n_values):
    out = {}
    for name in names:
        values, V = _samples(res, name)
        assert len(values) == n_values
        out[name] = (values, V)
    return out


NAMES = ["Crystal1Phi1", "Crystal1Phi2", "Crystal1Phi3", "Crystal1g_param_0", "Crystal1g_param_1"]


def _true_curves(truth, start):
    """The true curves of the five smoothed parameters at the scan points: the orientation
    angles (mrad) of U_true U_start^T, R = Rz(phi3) Ry(phi2) Rx(phi1), and the reciprocal metric
    elements a*^2 and c*^2 (x 1e5, the cell parameterisation's scale for this tetragonal cell)."""
    A_true = truth[0].crystal.A_at_scan_points
    G = np.array([metric_elements_from_A(A) for A in A_true])
    B_true = np.array([reciprocal_B_from_metric(g) for g in G])
    U_true = A_true @ np.linalg.inv(B_true)
    phi = _euler_xyz_mrad(U_true @ start[0].crystal.U.T)
    return [phi[:, 0], phi[:, 1], phi[:, 2], 1e5 * G[:, 0], 1e5 * G[:, 2]]


def test_scan_points_match_the_smoother_fitted_to_the_truth(drift, varying, exact):
    """The issue's criterion: at >= 95 % of the scan points the refined cell and orientation lie
    within 2 esd of the closest the smoother can come to the true drift, its sample values
    fitted to the true curves by least squares.

    For a correct estimator the expected fraction is 95.4 %; the points of a curve are strongly
    correlated (22 samples each, and Phi2/Phi3 share a soft direction with the detector's Tau1),
    so one data set's fraction scatters widely: over seeds 0-19 the pooled mean is 94.8 %, 15 of
    20 seeds reach 95 %, and this seed 98.5 % (docs/benchmarks.md).  The chi-square of the sample differences from the same job fitted
    to exact centroids checks the esds themselves."""
    truth, start = drift[0], drift[1]
    t = np.arange(truth[0].scan.array_range[0], truth[0].scan.array_range[1] + 1, dtype=float)
    n_values = sum(p["name"].startswith("Crystal1Phi1_sample") for p in varying.parameters)
    W = GaussianSmoother(truth[0].scan.array_range, n_values - 2).dense_weights(t)
    ours = _curves(varying, NAMES, n_values)
    inside = []
    for name, true_curve in zip(NAMES, _true_curves(truth, start)):
        values, V = ours[name]
        refined = W @ values
        closest = W @ np.linalg.lstsq(W, true_curve, rcond=None)[0]
        esd = np.sqrt(np.einsum("ni,ij,nj->n", W, V, W))
        inside.append(np.abs(refined - closest) <= 2 * esd)
        assert np.mean(inside[-1]) >= 0.8, (name, np.mean(inside[-1]))
        assert np.max(np.abs(refined - closest) / esd) < 4.0, name
        # a real test: the drift itself is many esds large
        assert np.ptp(closest) > 20 * esd.max(), name
    assert np.mean(inside) >= 0.95, [np.mean(i) for i in inside]
    free = [p for p in varying.parameters if not p["fixed"]]
    free_exact = [p for p in exact.parameters if not p["fixed"]]
    idx = [i for i, p in enumerate(free) if "_sample" in p["name"] and p["name"].split("_sample")[0] in NAMES]
    d = np.array([free[i]["value"] - free_exact[i]["value"] for i in idx])
    chi2 = d @ np.linalg.solve(varying.covariance[np.ix_(idx, idx)], d)
    # chi-square with len(idx) = 110 degrees of freedom: 99.9 % quantile about 163
    assert 0.5 * len(idx) < chi2 < len(idx) + 5 * np.sqrt(2 * len(idx)), chi2


def test_exact_centroids_recover_the_detector_and_the_true_curves(drift, exact):
    """On exact centroids the detector lands on the truth (the preset's wobble has no mean turn
    about the beam, which no data could tell from the detector's Tau1), and the orientation and
    cell follow the smoother's best fit to the true curves to within its ripple (the two fits
    weigh the scan differently: by reflections' prediction errors and uniformly per image)."""
    truth, start, _, facts = drift
    values = {p["name"]: p["value"] for p in exact.parameters}
    for name in ("Detector1Tau1", "Detector1Tau2", "Detector1Tau3"):
        # the truth is minus the start perturbation, to first order in the shifts (mrad)
        assert abs(values[name] + facts["start_perturbation"][name]) < 0.02, name
    t = np.arange(truth[0].scan.array_range[0], truth[0].scan.array_range[1] + 1, dtype=float)
    n_values = sum(p["name"].startswith("Crystal1Phi1_sample") for p in exact.parameters)
    W = GaussianSmoother(truth[0].scan.array_range, n_values - 2).dense_weights(t)
    for name, true_curve in zip(NAMES, _true_curves(truth, start)):
        fitted, _ = _samples(exact, name)
        best = W @ np.linalg.lstsq(W, true_curve, rcond=None)[0]
        ripple = np.max(np.abs(best - true_curve))
        assert np.max(np.abs(W @ fitted - best)) < ripple, name


def test_refined_expt_carries_scan_points(varying):
    crystal = varying.experiments[0].crystal
    n = varying.experiments[0].scan.num_images + 1
    assert crystal.A_at_scan_points.shape == (n, 3, 3)
    assert len(crystal.extra["B_covariance_at_scan_points"]) == n
    names = [p["name"] for p in varying.parameters]
    assert sum("Crystal1Phi1_sample" in s for s in names) == 22
    assert sum(not p["fixed"] for p in varying.parameters) == 117
