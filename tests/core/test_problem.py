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
