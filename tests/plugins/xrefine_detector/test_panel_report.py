"""The per-panel offsets and tilts of the report, and their propagated covariances, checked
against the panel geometry and against central finite differences of the same quantities."""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
from xrefine.panel_report import panel_movements
from xrefine_detector.factory import make_detector_parameterisation

from detector_cases import make_beam, make_two_level


def _offset_and_tilt(d0, d, size_mm):
    """Independent reference: centre offset (um) and small-rotation vector (mrad) of one panel
    from its start, in the start's fast, slow, normal basis."""
    half = 0.5 * np.asarray(size_mm)
    f0, s0, o0 = d0[:, 0], d0[:, 1], d0[:, 2]
    f, s, o = d[:, 0], d[:, 1], d[:, 2]
    n0 = np.cross(f0, s0) / np.linalg.norm(np.cross(f0, s0))
    basis = np.array([f0, s0, n0])
    c0 = o0 + half[0] * f0 + half[1] * s0
    c = o + half[0] * f + half[1] * s
    # the rotation taking the start axes to the current ones, as a rotation vector
    R = np.column_stack([f, s, np.cross(f, s) / np.linalg.norm(np.cross(f, s))]) @ basis
    angle = np.arccos(np.clip(0.5 * (np.trace(R) - 1), -1, 1))
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    vec = axis * (0.5 * angle / np.sin(angle)) if angle > 1e-12 else 0.5 * axis
    return 1000 * basis @ (c - c0), 1000 * basis @ vec


@pytest.fixture
def moved():
    detector = make_two_level()
    p = make_detector_parameterisation(detector, make_beam(), [0], hierarchy_level=[0, 1])
    d0 = p.state().copy()
    rng = np.random.default_rng(7)
    x = rng.normal(scale=0.05, size=p.num_free)  # mm and mrad: tens of um, tens of urad
    p.set_free_values(x)
    A = rng.normal(size=(p.num_free, p.num_free))
    V = 1e-4 * (A @ A.T + np.eye(p.num_free))
    problem = SimpleNamespace(parameterisations=[p], offsets=[0, p.num_free])
    return p, d0, x, V, problem


def test_offsets_and_tilts_match_the_geometry(moved):
    p, d0, x, V, problem = moved
    entries = panel_movements(problem, {id(p): d0}, V)
    d = p.state()
    assert len(entries) == d.shape[0]
    for e in entries:
        off, tilt = _offset_and_tilt(d0[e["panel"]], d[e["panel"]], p.model[e["panel"]].size_mm)
        assert np.allclose(e["offset_um"], off, atol=1e-6)
        # the report's tilt is the mean of the three axis cross products: a small-angle vector,
        # equal to the rotation vector to second order in the (sub-mrad) tilt
        assert np.allclose(e["tilt_mrad"], tilt, atol=1e-3 * np.abs(tilt).max() + 1e-9)
        assert np.linalg.norm(off) > 1  # the test moves every panel


def test_covariances_are_propagated_with_the_right_gradients(moved):
    p, d0, x, V, problem = moved
    entries = {e["panel"]: e for e in panel_movements(problem, {id(p): d0}, V)}
    h = 1e-4
    G_off = np.zeros((len(entries), 3, p.num_free))
    G_tilt = np.zeros_like(G_off)
    for j in range(p.num_free):
        vals = []
        for sign in (1, -1):
            q = copy.deepcopy(p)
            xj = x.copy()
            xj[j] += sign * h
            q.set_free_values(xj)
            d = q.state()
            vals.append([_offset_and_tilt(d0[k], d[k], p.model[k].size_mm) for k in range(len(entries))])
        for k in range(len(entries)):
            G_off[k, :, j] = (vals[0][k][0] - vals[1][k][0]) / (2 * h)
            G_tilt[k, :, j] = (vals[0][k][1] - vals[1][k][1]) / (2 * h)
    for k, e in entries.items():
        C_off = G_off[k] @ V @ G_off[k].T
        C_tilt = G_tilt[k] @ V @ G_tilt[k].T
        assert np.allclose(e["offset_cov_um2"], C_off, rtol=1e-5, atol=1e-9 * np.abs(C_off).max())
        # the reported tilt is the small-angle vector: its gradient differs from the exact
        # rotation vector's at the order of the tilt itself (tens of urad)
        assert np.allclose(e["tilt_cov_mrad2"], C_tilt, rtol=1e-3, atol=1e-3 * np.abs(C_tilt).max())
        assert np.allclose(np.sqrt(np.diag(C_off)), e["offset_esd_um"], rtol=1e-5)
        assert np.allclose(np.sqrt(np.diag(C_tilt)), e["tilt_esd_mrad"], rtol=1e-3)
        assert np.allclose(e["offset_cov_um2"], np.transpose(e["offset_cov_um2"]))


def test_no_covariance_no_esds(moved):
    p, d0, x, V, problem = moved
    for e in panel_movements(problem, {id(p): d0}, None):
        assert e["offset_esd_um"] is None and e["offset_cov_um2"] is None and e["tilt_cov_mrad2"] is None
