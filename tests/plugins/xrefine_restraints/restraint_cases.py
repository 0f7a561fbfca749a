"""Unit cells of every lattice type, a minimal stand-in for the problem, finite differences of
restraint rows, and two joint jobs: narrow thaumatin wedges sharing beam and detector, and the
60-module Pilatus 6M of tests/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: lattice -> (cell a, b, c, alpha, beta, gamma; space group), standard settings
LATTICES = {
    "triclinic": ((12.0, 14.0, 13.0, 85.0, 95.0, 100.0), "P 1"),
    "monoclinic": ((80.0, 60.0, 45.0, 90.0, 105.0, 90.0), "C 1 2 1"),
    "orthorhombic": ((40.0, 50.0, 60.0, 90.0, 90.0, 90.0), "P 21 21 21"),
    "tetragonal": ((57.8, 57.8, 150.2, 90.0, 90.0, 90.0), "P 41 21 2"),
    "hexagonal": ((100.0, 100.0, 70.0, 90.0, 90.0, 120.0), "P 61 2 2"),
    "rhombohedral": ((50.0, 50.0, 50.0, 80.0, 80.0, 80.0), "R 3:R"),
    "cubic": ((103.0, 103.0, 103.0, 90.0, 90.0, 90.0), "I 2 3"),
}

#: lattice -> the cell parameters restrained with distinct, non-zero sigmas (a, b, c = 0, 1, 2;
#: alpha, beta, gamma = 3, 4, 5)
RESTRAINED = {
    "triclinic": [0, 1, 2, 3, 4, 5],
    "monoclinic": [0, 1, 2, 4],
    "orthorhombic": [0, 1, 2],
    "tetragonal": [0, 2],
    "hexagonal": [0, 2],
    "rhombohedral": [0, 3],
    "cubic": [0],
}


def unit_cell(lattice: str, seed: int = 0, name: str = "Crystal1", experiment_ids=(0,), relative_shift: float = 0.01):
    """A unit-cell parameterisation of the lattice, moved away from its start by a random
    relative shift of every parameter (so the gradients are taken at non-trivial values)."""
    from xrefine_rotation.unit_cell import make_crystal_unit_cell_parameterisation
    from xrefine_simulate.presets import make_crystal, random_rotation

    rng = np.random.default_rng([seed, 7])
    cell, group = LATTICES[lattice]
    crystal = make_crystal(cell, group, random_rotation(rng))
    p = make_crystal_unit_cell_parameterisation(crystal, list(experiment_ids), name)
    values = p.get_free_values()
    p.set_free_values(values * (1.0 + relative_shift * rng.uniform(-1.0, 1.0, size=len(values))))
    return p


class StubProblem:
    """What `Restraint.rows` uses of a problem: the parameterisations and their offsets."""

    def __init__(self, parameterisations):
        self.parameterisations = list(parameterisations)
        self.offsets = np.concatenate([[0], np.cumsum([p.num_free for p in self.parameterisations])]).astype(int)

    @property
    def n_full(self) -> int:
        return int(self.offsets[-1])

    def get_full_x(self) -> np.ndarray:
        return np.concatenate([p.get_free_values() for p in self.parameterisations])

    def set_full_x(self, x) -> None:
        for p, a, b in zip(self.parameterisations, self.offsets[:-1], self.offsets[1:]):
            p.set_free_values(x[a:b])


def dense_jacobian(rows, n_full: int) -> np.ndarray:
    """The rows' jacobian as (m, n_full)."""
    J = np.zeros((len(rows.residuals), n_full))
    J[:, rows.columns] = rows.jacobian
    return J


def fd_jacobian(residuals_at, problem: StubProblem, relative_step: float = 1e-5) -> np.ndarray:
    """Central differences of `residuals_at()` over every full-vector column, restoring x."""
    x0 = problem.get_full_x()
    cols = []
    for k in range(len(x0)):
        h = relative_step * max(abs(x0[k]), 1.0)
        x = x0.copy()
        x[k] = x0[k] + h
        problem.set_full_x(x)
        up = residuals_at()
        x[k] = x0[k] - h
        problem.set_full_x(x)
        down = residuals_at()
        cols.append((up - down) / (2 * h))
    problem.set_full_x(x0)
    return np.column_stack(cols)


def assert_close_relative(analytic: np.ndarray, numeric: np.ndarray, rtol: float = 1e-6) -> None:
    """Element-wise agreement relative to the largest element of the analytic jacobian."""
    scale = np.abs(analytic).max()
    assert scale > 0
    err = np.abs(analytic - numeric).max() / scale
    assert err <= rtol, f"largest relative difference {err:.2e}"


def joint_wedges(sim, seeds, n_images: int = 10):
    """Narrow wedges of thaumatin, one per seed (independent crystals in different
    orientations), as one job sharing a beam, a detector and a goniometer: a Truth whose
    experiments are the wedges.  `sim` is the helpers fixture of tests/conftest.py."""
    import copy

    from xrefine.models import ExperimentList

    truths = [sim.small_truth(seed, n_images=n_images) for seed in seeds]
    shared = truths[0].experiments[0]
    experiments = []
    for t in truths:
        e = t.experiments[0]
        e.beam, e.detector, e.goniometer = shared.beam, shared.detector, shared.goniometer
        experiments.append(e)
    truth = copy.copy(truths[0])
    truth.experiments = ExperimentList(experiments)
    return truth


def group_spread(cells: np.ndarray, terms=(0, 2)) -> float:
    """Root sum of squares of the deviations of the cells' `terms` from their mean (Angstrom):
    the restraint's own measure of disagreement when every term has the same sigma."""
    v = np.asarray(cells)[:, list(terms)]
    return float(np.sqrt(np.sum((v - v.mean(axis=0)) ** 2)))


P6M = Path(__file__).resolve().parents[2] / "data" / "p6m-modules-small"


def p6m_job(n_images: int = 150, d_min: float = 1.6, seed: int = 1):
    """(observations, start experiments) for the 60-module Pilatus 6M of tests/data: the first
    `n_images` of its truth simulated to `d_min` with the default noise and no outliers, and
    its start models cut to the same scan."""
    from xrefine.io import read_experiments
    from xrefine.predict import predict_experiments
    from xrefine.refine import build_predictors
    from xrefine.simulation import Truth, observe
    from xrefine_simulate.presets import truncate_scan

    truth = Truth(experiments=read_experiments(str(P6M / "truth.expt")), d_min=d_min, outlier_fraction=0.0)
    truncate_scan(truth, n_images)
    start = read_experiments(str(P6M / "start.expt"))
    truncate_scan(Truth(experiments=start, d_min=d_min), n_images)
    predicted = predict_experiments(truth.experiments, build_predictors(truth.experiments), d_min)
    table, _ = observe(truth, predicted, np.random.default_rng([seed, 1]))
    return table, start
