"""RotationPredictor.predict: geometry, solution choice, turn matching, per-row states, invalid rows."""

from __future__ import annotations

import numpy as np
import pytest

from xrefine.geometry import rotate_vectors, rotation_matrix, unit
from xrefine.predictor import ExperimentState, StateDerivative

from xrefine_rotation import CrystalOrientationParameterisation, CrystalUnitCellParameterisation, RotationPredictor


def rotated_experiment(sim, **kwargs):
    S = rotation_matrix(unit([0.2, 0.5, 0.8]), np.radians(12.0))
    F = rotation_matrix(unit([-1.0, 1.0, 2.0]), np.radians(40.0))
    return sim.make_experiment(setting_rotation=S, fixed_rotation=F, **kwargs)


def test_applies_to(sim):
    e = sim.make_experiment()
    predictor = RotationPredictor()
    assert predictor.applies_to(e)
    e.scan.oscillation = (0.0, 0.0)
    assert not predictor.applies_to(e)
    e.goniometer = None
    assert not predictor.applies_to(e)


def test_s1_on_the_sphere_and_direct_formula(sim):
    """|s1| = |s0|, and s1, X, Y agree with r = S R(e_d, phi) F U B h intersected with the panel."""
    e = rotated_experiment(sim)
    obs = sim.observe(e)
    block = sim.predict(e, obs)
    assert block.valid.all()
    s0 = e.beam.s0
    k = np.linalg.norm(s0)
    assert np.max(np.abs(np.linalg.norm(block.s1, axis=1) - k)) <= 1e-10 * k

    g = e.goniometer
    p = obs.miller_index @ (g.fixed_rotation @ e.crystal.U @ e.crystal.B).T
    r = rotate_vectors(g.rotation_axis, block.xyz[:, 2], p) @ g.setting_rotation.T
    np.testing.assert_allclose(block.s1, s0 + r, rtol=0, atol=1e-12)
    v = (s0 + r) @ e.detector[0].D.T
    np.testing.assert_allclose(block.xyz[:, :2], v[:, :2] / v[:, 2:], rtol=0, atol=1e-9)


def test_entering_flag_selects_the_solution(sim):
    e = rotated_experiment(sim)
    obs = sim.observe(e)
    s0, axis = e.beam.s0, e.goniometer.rotation_axis_lab
    state = ExperimentState.from_experiment(e, 0)
    predictor = RotationPredictor()
    for entering in (np.ones(len(obs.entering), bool), np.zeros(len(obs.entering), bool)):
        block = predictor.predict(state, obs.miller_index, entering, None)
        ok = ~np.isnan(block.s1[:, 0])
        assert ok.sum() > 100
        # entering iff s1 . (s0 x e) < 0 (DIALS convention)
        assert np.all((block.s1[ok] @ np.cross(s0, axis) < 0) == entering[ok])
    # the observations' own flags reproduce their angles (phi_obs None: phi in [0, 2 pi))
    block = predictor.predict(state, obs.miller_index, obs.entering, None)
    np.testing.assert_allclose(block.xyz[:, 2], np.mod(obs.xyz[:, 2], 2 * np.pi), atol=1e-12)
    flipped = predictor.predict(state, obs.miller_index, ~obs.entering, None)
    both = ~np.isnan(flipped.xyz[:, 2])
    assert np.all(np.abs(flipped.xyz[both, 2] - block.xyz[both, 2]) > 1e-6)


@pytest.mark.parametrize("start_deg", [0.0, -400.0])
def test_turn_matching_on_scans_longer_than_a_turn(sim, start_deg):
    """Each reflection appears once per turn; phi_obs picks the turn."""
    e = sim.make_experiment(image_range=(1, 2400), oscillation=(start_deg, 0.3))  # 720 degrees
    obs = sim.observe(e, d_min=3.0)
    key = [tuple(h) + (en,) for h, en in zip(obs.miller_index.tolist(), obs.entering)]
    assert len(set(key)) < 0.6 * len(key)  # most reflections are seen twice
    block = sim.predict(e, obs)
    np.testing.assert_allclose(block.xyz, obs.xyz, rtol=0, atol=1e-9)
    # an observation a little off its turn's angle still gets that turn
    state = ExperimentState.from_experiment(e, 0)
    noisy = obs.xyz[:, 2] + np.random.default_rng(1).uniform(-0.5, 0.5, len(obs.xyz))
    block = RotationPredictor().predict(state, obs.miller_index, obs.entering, noisy)
    np.testing.assert_allclose(block.xyz[:, 2], obs.xyz[:, 2], rtol=0, atol=1e-9)


def per_row_state(state: ExperimentState, n: int) -> ExperimentState:
    return ExperimentState(
        s0=np.tile(state.s0, (n, 1)),
        U=np.tile(state.U, (n, 1, 1)),
        B=np.tile(state.B, (n, 1, 1)),
        d=np.tile(state.d, (n, 1, 1)),
        F=state.F,
        S=np.tile(state.S, (n, 1, 1)),
        axis=state.axis,
    )


def all_derivatives(e, rows):
    """One group of every kind, with values at different non-trivial points."""
    rng = np.random.default_rng(7)
    ori = CrystalOrientationParameterisation(e.crystal, [0])
    cell = CrystalUnitCellParameterisation(e.crystal, [0])
    return [
        StateDerivative("beam.s0", rng.normal(size=rows + (2, 3)) * 1e-3),
        StateDerivative("crystal.U", ori.state_derivatives() if not rows else np.tile(ori.state_derivatives(), rows + (1, 1, 1))),
        StateDerivative("crystal.B", cell.state_derivatives() if not rows else np.tile(cell.state_derivatives(), rows + (1, 1, 1))),
        StateDerivative("goniometer.S", rng.normal(size=rows + (2, 3, 3)) * 1e-3),
        StateDerivative("detector.d", rng.normal(size=rows + (3, 3, 3))),
    ]


def test_per_row_states_give_identical_results(sim):
    e = rotated_experiment(sim)
    obs = sim.observe(e)
    n = len(obs.miller_index)
    state = ExperimentState.from_experiment(e, 0)
    predictor = RotationPredictor()
    derivs = all_derivatives(e, ())
    static = predictor.predict(state, obs.miller_index, obs.entering, obs.xyz[:, 2], derivs)
    tiled = [StateDerivative(d.kind, np.tile(d.values, (n,) + (1,) * d.values.ndim)) for d in derivs]
    varying = predictor.predict(per_row_state(state, n), obs.miller_index, obs.entering, obs.xyz[:, 2], tiled)
    np.testing.assert_array_equal(varying.valid, static.valid)
    np.testing.assert_allclose(varying.xyz, static.xyz, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(varying.s1, static.s1, rtol=1e-12, atol=1e-15)
    scale = np.abs(static.jacobian).max(axis=0, keepdims=True)
    scale[scale == 0] = 1.0  # d(phi)/d(detector) columns are identically zero
    np.testing.assert_allclose(varying.jacobian / scale, static.jacobian / scale, rtol=0, atol=1e-11)


def test_per_row_states_that_differ_between_rows(sim):
    """Rows with different states give what each state gives on its own."""
    e = rotated_experiment(sim)
    obs = sim.observe(e)
    n = len(obs.miller_index)
    state = ExperimentState.from_experiment(e, 0)
    other = ExperimentState.from_experiment(e, 0)
    tilt = rotation_matrix(unit([1.0, 2.0, -1.0]), 2e-3)
    other.s0 = tilt @ state.s0
    other.U = tilt @ state.U
    other.B = state.B * 1.001
    other.S = tilt.T @ state.S
    other.d = state.d + 0.05
    pick = np.arange(n) % 2 == 1
    mixed = per_row_state(state, n)
    for name in ("s0", "U", "B", "S", "d"):
        getattr(mixed, name)[pick] = getattr(other, name)
    predictor = RotationPredictor()
    derivs = all_derivatives(e, ())
    tiled = [StateDerivative(d.kind, np.tile(d.values, (n,) + (1,) * d.values.ndim)) for d in derivs]
    got = predictor.predict(mixed, obs.miller_index, obs.entering, obs.xyz[:, 2], tiled)
    for st, rows in ((state, ~pick), (other, pick)):
        want = predictor.predict(st, obs.miller_index[rows], obs.entering[rows], obs.xyz[rows, 2], derivs)
        np.testing.assert_array_equal(got.valid[rows], want.valid)
        ok = want.valid
        np.testing.assert_allclose(got.xyz[rows][ok], want.xyz[ok], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.jacobian[rows][ok], want.jacobian[ok], rtol=1e-9, atol=1e-12)


def test_invalid_rows_are_flagged_and_nan(sim):
    e = sim.make_experiment()
    obs = sim.observe(e)
    state = ExperimentState.from_experiment(e, 0)
    hkl = np.vstack([obs.miller_index[:3], [[0, 0, 0], [60, 60, 60]]])
    entering = np.array([True, False, True, True, False])
    derivs = [StateDerivative("beam.s0", np.eye(3))]
    block = RotationPredictor().predict(state, hkl, entering, np.zeros(5), derivs)
    np.testing.assert_array_equal(block.valid, [True, True, True, False, False])
    assert np.isnan(block.xyz[3:]).all() and np.isnan(block.jacobian[3:]).all()
    assert np.isfinite(block.xyz[:3]).all() and np.isfinite(block.jacobian[:3]).all()
    # a panel behind the sample: no ray reaches it
    d = state.d.copy()
    d[:, 2] *= -1.0
    state.d = d
    block = RotationPredictor().predict(state, obs.miller_index, obs.entering, obs.xyz[:, 2], derivs)
    assert not block.valid.any() and np.isnan(block.xyz).all()


@pytest.mark.parametrize("per_row", [False, True])
def test_chunking_is_invisible(sim, monkeypatch, per_row):
    """Batches larger than the internal chunk give what one chunk gives (uneven last chunk)."""
    import xrefine_rotation.predictor as predictor_module

    e = rotated_experiment(sim)
    obs = sim.observe(e)
    n = len(obs.miller_index)
    state = ExperimentState.from_experiment(e, 0)
    derivs = all_derivatives(e, ())
    if per_row:
        state = per_row_state(state, n)
        derivs = [StateDerivative(d.kind, np.tile(d.values, (n,) + (1,) * d.values.ndim)) for d in derivs]
    predictor = RotationPredictor()
    whole = predictor.predict(state, obs.miller_index, obs.entering, obs.xyz[:, 2], derivs)
    monkeypatch.setattr(predictor_module, "CHUNK_ROWS", 97)
    chunked = predictor.predict(state, obs.miller_index, obs.entering, obs.xyz[:, 2], derivs)
    np.testing.assert_array_equal(chunked.valid, whole.valid)
    np.testing.assert_allclose(chunked.xyz, whole.xyz, rtol=1e-14, atol=0)
    np.testing.assert_allclose(chunked.s1, whole.s1, rtol=1e-14, atol=0)
    np.testing.assert_allclose(chunked.jacobian, whole.jacobian, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize(
    "per_row_states, per_row_kinds",
    [
        (("U",), ()),
        (("B",), ("crystal.B",)),
        (("U", "B"), ("crystal.U", "crystal.B")),
        (("s0",), ("beam.s0",)),
        (("S",), ("goniometer.S", "crystal.U")),
        (("d",), ("detector.d",)),
        ((), ("beam.s0", "crystal.U", "crystal.B", "goniometer.S", "detector.d")),
    ],
)
def test_mixed_static_and_per_row_inputs(sim, per_row_states, per_row_kinds):
    """Any mix of per-row and static states and derivative values gives the static result."""
    e = rotated_experiment(sim)
    obs = sim.observe(e)
    n = len(obs.miller_index)
    state = ExperimentState.from_experiment(e, 0)
    derivs = all_derivatives(e, ())
    predictor = RotationPredictor()
    static = predictor.predict(state, obs.miller_index, obs.entering, obs.xyz[:, 2], derivs)
    tiled = per_row_state(state, n)
    for name in per_row_states:
        setattr(state, name, getattr(tiled, name))
    mixed = [
        StateDerivative(d.kind, np.tile(d.values, (n,) + (1,) * d.values.ndim)) if d.kind in per_row_kinds else d
        for d in derivs
    ]
    got = predictor.predict(state, obs.miller_index, obs.entering, obs.xyz[:, 2], mixed)
    np.testing.assert_array_equal(got.valid, static.valid)
    np.testing.assert_allclose(got.xyz, static.xyz, rtol=1e-12, atol=1e-12)
    scale = np.abs(static.jacobian).max(axis=0, keepdims=True)
    scale[scale == 0] = 1.0
    np.testing.assert_allclose(got.jacobian / scale, static.jacobian / scale, rtol=0, atol=1e-11)
