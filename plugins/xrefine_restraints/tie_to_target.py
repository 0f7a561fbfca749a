"""Tie-to-target unit-cell restraint: c - c_target (MATH.md 9.1)."""

from __future__ import annotations

import numpy as np

from xrefine.restraints import Restraint, RestraintRows

from .unit_cell_terms import CELL_NAMES, cell_and_gradients, columns_in

__all__ = ["TieToTarget"]


class TieToTarget(Restraint):
    """Restrain some cell parameters of one static unit-cell parameterisation to target values.

    `terms` index (a, b, c, alpha, beta, gamma); the target `values` (6,) and the terms'
    `sigmas` are in Angstrom and degrees.  Residuals c[terms] - values[terms], weights
    1/sigma^2, gradients d c[terms] / d p of the parameterisation's free parameters."""

    def __init__(self, parameterisation, values, terms, sigmas):
        self.parameterisation = parameterisation
        self.values = np.asarray(values, dtype=float)
        self.terms = np.asarray(terms, dtype=int)
        self.weights = 1.0 / np.asarray(sigmas, dtype=float) ** 2
        self.name = f"{parameterisation.name} cell tied to target ({', '.join(CELL_NAMES[t] for t in self.terms)})"

    def rows(self, problem) -> RestraintRows:
        cell, grads = cell_and_gradients(self.parameterisation)
        cols = columns_in(problem, self.parameterisation)
        return RestraintRows(
            residuals=cell[self.terms] - self.values[self.terms],
            weights=self.weights.copy(),
            jacobian=np.ascontiguousarray(grads[: len(cols), self.terms].T),
            columns=cols,
        )
