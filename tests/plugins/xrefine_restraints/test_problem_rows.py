"""Restraint rows in the assembled problem: they join residual_vector and jacobian exactly as
evaluate counts them in chi2, the normal matrix and the gradient, with and without
constraints, and they count as equations for the degrees of freedom."""

import copy

import numpy as np
import pytest
from restraint_cases import joint_wedges
from xrefine.config import build_config
from xrefine.refine import _problem, build_parameterisations, build_predictors
from xrefine.selection import select_observations

RESTRAINTS = {
    "restraints__tie_to_target__values": [57.9, 57.9, 150.0, 90, 90, 90],
    "restraints__tie_to_target__sigmas": [0.01, 0.01, 0.03, 0, 0, 0],
    "restraints__tie_to_target__experiments": ["1-2"],
    "restraints__tie_to_group__sigmas": [0.02, 0.02, 0.05, 0, 0, 0],
}


@pytest.fixture(scope="module")
def wedges(sim):
    truth = joint_wedges(sim, [1, 2, 3, 4])
    table, _ = sim.noisy(truth, sim.predicted_for(truth), seed=3)
    return truth, table, sim.start_for(truth, seed=3)


def _make(wedges, **options):
    _, table, start = wedges
    experiments = copy.deepcopy(start)
    cfg = build_config(overrides={"scan_varying": "false", "chunk_size": 700, **options})
    obs, _ = select_observations(experiments, table, cfg)
    params = build_parameterisations(experiments, cfg)
    problem = _problem(experiments, obs, params, build_predictors(experiments), cfg)
    problem.x0 = problem.get_x()  # tests evaluate elsewhere; this is the start
    return problem


@pytest.fixture(scope="module")
def plain(wedges):
    return _make(wedges)


def _restrained(wedges, kind):
    options = dict(RESTRAINTS)
    if "constraints" in kind:
        options["constraints"] = ["Crystal*g_param_1", "Dist"]
    if kind == "median":
        options["restraints__tie_to_group__target"] = "median"
    return _make(wedges, **options)


@pytest.fixture(scope="module", params=["mean", "mean+constraints", "median"])
def restrained(request, wedges):
    return _restrained(wedges, request.param)


def _restraint_row_count(problem) -> int:
    return sum(len(r.rows(problem).residuals) for r in problem.restraints)


def test_problem_holds_the_restraints(restrained):
    names = [r.name for r in restrained.restraints]
    assert len(names) == 3  # Crystal2 and Crystal3 tied to the target, one group of four
    assert _restraint_row_count(restrained) == 2 * 2 + 4 * 2  # terms a and c


def test_rows_agree_with_evaluate(restrained):
    x = restrained.x0 + 0.01
    ev = restrained.evaluate(x)
    J = restrained.jacobian(x).toarray()
    r = restrained.residual_vector(x)
    assert len(r) == 3 * int(restrained.obs.active.sum()) + _restraint_row_count(restrained)
    assert J.shape == (len(r), restrained.n_params)
    assert np.allclose(J.T @ J, ev.normal, rtol=1e-10, atol=1e-10 * np.abs(ev.normal).max())
    assert np.allclose(J.T @ r, ev.gradient, rtol=1e-9, atol=1e-9 * np.abs(ev.gradient).max())
    assert np.isclose(r @ r, ev.chi2, rtol=1e-12)


def test_restraints_change_the_objective_by_their_rows(plain, restrained):
    ev0 = plain.evaluate(plain.x0, derivatives=False)
    ev = restrained.evaluate(restrained.x0, derivatives=False)
    rows = [r.rows(restrained) for r in restrained.restraints]
    assert np.isclose(ev.chi2 - ev0.chi2, sum(float(np.sum(rr.weights * rr.residuals**2)) for rr in rows), rtol=1e-9)


def test_restraints_count_in_the_degrees_of_freedom(plain, restrained):
    ev0 = plain.evaluate(plain.x0, derivatives=False)
    ev = restrained.evaluate(restrained.x0, derivatives=False)
    assert ev.n_equations == ev0.n_equations + _restraint_row_count(restrained)
    assert ev.dof == ev.n_equations - restrained.n_params


def test_gradient_matches_finite_differences_of_the_objective(restrained):
    """The cell columns, which the restraints act on."""
    x = restrained.x0 + 0.02
    ev = restrained.evaluate(x)
    names = restrained.parameter_names
    cell_columns = [k for k, n in enumerate(names) if "g_param" in n]
    assert cell_columns
    for k in cell_columns:
        dx = np.zeros_like(x)
        h = 1e-6 * max(abs(x[k]), 1.0)
        dx[k] = h
        fd = (restrained.evaluate(x + dx, False).objective - restrained.evaluate(x - dx, False).objective) / (2 * h)
        assert abs(fd - ev.gradient[k]) <= 1e-4 * np.abs(ev.gradient[cell_columns]).max(), names[k]
