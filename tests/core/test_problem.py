"""The problem's normal equations, gradient and sparse Jacobian agree with each other and with
finite differences of the objective."""

import numpy as np
import pytest

from xrefine.config import build_config
from xrefine.problem import RefinementProblem
from xrefine.refine import build_parameterisations, build_predictors
from xrefine.selection import select_observations


@pytest.fixture(scope="module")
def problem(wedge, sim):
    truth, predicted, start = wedge
    import copy

    start = copy.deepcopy(start)
    table, _ = sim.noisy(truth, predicted, seed=11)
    cfg = build_config(overrides={"chunk_size": 3000})  # several chunks per panel block
    obs, _ = select_observations(start, table, cfg)
    p = RefinementProblem(start, obs, build_parameterisations(start, cfg), build_predictors(start), cfg["chunk_size"])
    return p


def test_normal_matrix_equals_sparse_jacobian_product(problem):
    x = problem.get_x() + 0.01
    ev = problem.evaluate(x)
    J = problem.jacobian(x).toarray()
    r = problem.residual_vector(x)
    assert np.allclose(J.T @ J, ev.normal, rtol=1e-10, atol=1e-8 * np.abs(ev.normal).max())
    assert np.allclose(J.T @ r, ev.gradient, rtol=1e-9, atol=1e-9 * np.abs(ev.gradient).max())
    assert np.isclose(r @ r, ev.chi2, rtol=1e-12)


def test_gradient_matches_finite_differences_of_the_objective(problem):
    x = problem.get_x() + 0.02
    ev = problem.evaluate(x)
    for k in range(problem.n_params):
        dx = np.zeros_like(x)
        dx[k] = 1e-6
        fd = (problem.evaluate(x + dx, False).objective - problem.evaluate(x - dx, False).objective) / 2e-6
        assert abs(fd - ev.gradient[k]) <= 1e-3 * max(abs(ev.gradient[k]), 1e-3 * np.abs(ev.gradient).max()), k


def test_inactive_rows_do_not_count(problem):
    x = problem.get_x()
    all_rows = problem.evaluate(x)
    problem.obs.active[::2] = False
    try:
        half = problem.evaluate(x)
        assert half.n_reflections < 0.6 * all_rows.n_reflections
        assert np.all(np.diag(half.normal) < np.diag(all_rows.normal))
    finally:
        problem.obs.active[:] = True


def test_covariance_is_scaled_inverse(problem):
    ev = problem.evaluate(problem.get_x())
    V = problem.covariance(ev)
    s2 = ev.chi2 / ev.dof
    assert np.allclose(V @ ev.normal, s2 * np.eye(problem.n_params), atol=1e-8)


def test_zero_variance_coordinate_has_no_weight(wedge, sim):
    """A zero variance in one coordinate: that coordinate drops out of the target (dials.refine's
    statistical weights), so moving its observation changes neither the objective nor the
    normal equations, while the other coordinates of the same reflections still count."""
    import copy

    truth, predicted, start = wedge
    table, _ = sim.noisy(truth, predicted, seed=12)
    var = table["xyzobs.mm.variance"].copy()
    var[::7, 2] = 0.0
    table["xyzobs.mm.variance"] = var
    cfg = build_config()

    def evaluate(t):
        experiments = copy.deepcopy(start)  # evaluating moves the models
        obs, _ = select_observations(experiments, t, cfg)
        p = RefinementProblem(experiments, obs, build_parameterisations(experiments, cfg), build_predictors(experiments),
                              cfg["chunk_size"])
        return obs, p.evaluate(p.get_x() + 0.01)

    obs, ev = evaluate(table)
    zero = var[obs.rows, 2] == 0
    assert zero.any() and np.all(obs.weights[zero, 2] == 0) and np.all(obs.weights[~zero, 2] > 0)
    np.testing.assert_allclose(obs.weights[zero, :2], 1.0 / var[obs.rows][zero, :2])
    for k, expect_same in ((2, True), (0, False)):
        moved = copy.copy(table)
        moved.columns = dict(table.columns)
        xyz = table["xyzobs.mm.value"].copy()
        # (far enough inside the scan that no reflection crosses its ends)
        rows = np.arange(0, table.nrows, 7)
        lo, hi = start[0].scan.oscillation_range_rad
        rows = rows[(xyz[rows, 2] > lo + 0.01) & (xyz[rows, 2] < hi - 0.01)]
        xyz[rows, k] += 1e-3
        moved["xyzobs.mm.value"] = xyz
        _, ev2 = evaluate(moved)
        assert (ev2.chi2 == pytest.approx(ev.chi2, rel=1e-12)) == expect_same, k
        np.testing.assert_allclose(ev2.normal, ev.normal, rtol=1e-12)
