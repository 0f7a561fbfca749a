"""Finite-difference checks of every restraint's gradients, for every lattice type, at
parameter values away from the start (MATH.md 9.1, 10.1)."""

import numpy as np
import pytest
from restraint_cases import (
    LATTICES,
    RESTRAINED,
    StubProblem,
    assert_close_relative,
    dense_jacobian,
    fd_jacobian,
    unit_cell,
)
from xrefine.cell import cell_gradients

from xrefine_restraints import TieToGroup, TieToTarget, cell_and_gradients, restrained_terms

SIGMAS = np.array([0.1, 0.2, 0.3, 0.5, 0.6, 0.7])


def _terms(p):
    terms, sig = restrained_terms(*cell_and_gradients(p), SIGMAS)
    return terms, sig


@pytest.mark.parametrize("lattice", list(LATTICES))
def test_cell_values_and_gradients_match_the_model(lattice):
    p = unit_cell(lattice, seed=1)
    cell, grads = cell_and_gradients(p)
    assert np.allclose(cell, p.model.unit_cell, rtol=1e-12)
    assert np.allclose(grads, cell_gradients(p.state(), p.state_derivatives()), rtol=1e-14)
    problem = StubProblem([p])
    fd = fd_jacobian(lambda: cell_and_gradients(p)[0], problem)
    assert_close_relative(grads.T, fd)


@pytest.mark.parametrize("lattice", list(LATTICES))
def test_tie_to_target_gradients(lattice):
    p = unit_cell(lattice, seed=2)
    terms, sig = _terms(p)
    assert list(terms) == RESTRAINED[lattice]
    target = np.array(LATTICES[lattice][0]) + 0.3
    r = TieToTarget(p, target, terms, sig)
    problem = StubProblem([p])
    rows = r.rows(problem)
    assert np.allclose(rows.residuals, p.model.unit_cell[terms] - target[terms], rtol=1e-12, atol=1e-12)
    assert np.allclose(rows.weights, 1.0 / sig**2)
    fd = fd_jacobian(lambda: r.rows(problem).residuals, problem)
    assert_close_relative(dense_jacobian(rows, problem.n_full), fd)


@pytest.mark.parametrize("n_crystals", [2, 3, 5])
@pytest.mark.parametrize("lattice", list(LATTICES))
def test_tie_to_group_mean_gradients_are_exact(lattice, n_crystals):
    cells = [unit_cell(lattice, seed=10 + i, name=f"Crystal{i + 1}", experiment_ids=[i], relative_shift=0.02)
             for i in range(n_crystals)]
    terms, sig = _terms(cells[0])
    r = TieToGroup(cells, terms, sig, "mean")
    problem = StubProblem(cells)
    rows = r.rows(problem)
    values = np.array([c.model.unit_cell[terms] for c in cells])
    assert np.allclose(rows.residuals, (values - values.mean(axis=0)).ravel(), atol=1e-10)
    assert np.allclose(rows.weights, np.tile(1.0 / sig**2, n_crystals))
    fd = fd_jacobian(lambda: r.rows(problem).residuals, problem)
    J = dense_jacobian(rows, problem.n_full)
    assert_close_relative(J, fd)
    # the exact mean gradient: (1 - 1/N) on a crystal's own rows, -1/N on the others'
    own = cell_and_gradients(cells[0])[1][:, terms].T
    k = cells[0].num_free
    assert np.allclose(J[: len(terms), :k], (1 - 1 / n_crystals) * own)
    assert np.allclose(J[len(terms): 2 * len(terms), :k], -own / n_crystals)


@pytest.mark.parametrize("n_crystals", [3, 4, 5])
@pytest.mark.parametrize("lattice", list(LATTICES))
def test_tie_to_group_median_gradients_are_exact(lattice, n_crystals):
    """Residuals c_i - median; the median moves with the middle crystal (odd N) or half with
    each of the two middle ones (even N)."""
    cells = [unit_cell(lattice, seed=20 + i, name=f"Crystal{i + 1}", experiment_ids=[i], relative_shift=0.02)
             for i in range(n_crystals)]
    terms, sig = _terms(cells[0])
    r = TieToGroup(cells, terms, sig, "median")
    problem = StubProblem(cells)
    rows = r.rows(problem)
    values = np.array([c.model.unit_cell[terms] for c in cells])
    assert np.allclose(rows.residuals, (values - np.median(values, axis=0)).ravel(), atol=1e-10)
    fd = fd_jacobian(lambda: r.rows(problem).residuals, problem)
    J = dense_jacobian(rows, problem.n_full)
    assert_close_relative(J, fd)
    # the middle crystal of an odd group has rows that are identically zero
    if n_crystals % 2:
        middle = np.argsort(values[:, 0])[n_crystals // 2]
        assert np.allclose(J[middle * len(terms)], 0.0, atol=1e-12 * np.abs(J).max())


def test_gradients_follow_fixing_after_the_restraint_was_built():
    """Auto-reduction may fix parameters after the restraints were built: rows then use the
    remaining free parameters and the problem's new offsets."""
    cells = [unit_cell("monoclinic", seed=30 + i, name=f"Crystal{i + 1}", experiment_ids=[i]) for i in range(3)]
    terms, sig = _terms(cells[0])
    r = TieToGroup(cells, terms, sig, "mean")
    cells[1].parameters[0].fixed = True
    problem = StubProblem(cells)
    rows = r.rows(problem)
    assert rows.jacobian.shape == (3 * len(terms), 4 + 3 + 4)
    assert list(rows.columns) == list(range(11))
    assert_close_relative(dense_jacobian(rows, problem.n_full), fd_jacobian(lambda: r.rows(problem).residuals, problem))


def test_rows_of_a_parameterisation_missing_from_the_problem_have_no_columns():
    p = unit_cell("tetragonal")
    terms, sig = _terms(p)
    rows = TieToTarget(p, LATTICES["tetragonal"][0], terms, sig).rows(StubProblem([]))
    assert rows.jacobian.shape == (2, 0) and len(rows.columns) == 0
