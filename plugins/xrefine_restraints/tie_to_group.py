"""Tie-to-group unit-cell restraint: c_i - mean or median of the group (MATH.md 9.1)."""

from __future__ import annotations

import numpy as np

from xrefine.restraints import Restraint, RestraintRows

from .unit_cell_terms import CELL_NAMES, cell_and_gradients, columns_in

__all__ = ["TieToGroup", "GROUP_TARGETS"]

GROUP_TARGETS = ("mean", "median")


def _centre_weights(values: np.ndarray, target: str) -> np.ndarray:
    """(N, m): d centre[t] / d values[j, t] for the mean (1/N) or the median (1 for the middle
    crystal of an odd group, 1/2 for each of the two middle ones of an even group, else 0)."""
    n, m = values.shape
    if target == "mean":
        return np.full((n, m), 1.0 / n)
    order = np.argsort(values, axis=0, kind="stable")
    w = np.zeros((n, m))
    cols = np.arange(m)
    if n % 2:
        w[order[n // 2], cols] = 1.0
    else:
        w[order[n // 2 - 1], cols] = 0.5
        w[order[n // 2], cols] = 0.5
    return w


class TieToGroup(Restraint):
    """Restrain the cells of N crystals towards their common value.

    Rows, crystal by crystal: c_i[terms] - t[terms], weights 1/sigma^2, where t is the mean or
    the median of the N cells.  Gradients are exact: with respect to crystal j's parameters,
    (delta_ij - w_j) dc_j/dp, where w_j = dt/dc_j is 1/N for the mean (MATH.md 9.1) and, for the
    median, 1 for the middle crystal (1/2 for each of the two middle ones of an even group)
    and 0 for the others.  DIALS instead holds the median constant (gradient dc_i/dp only); that
    freezes the middle crystal with a tight sigma (its own row, identically zero, then resists
    every move) and disagrees with the objective the engines test steps against."""

    def __init__(self, parameterisations, terms, sigmas, target: str = "mean"):
        if target not in GROUP_TARGETS:
            raise ValueError(f"target must be one of {GROUP_TARGETS}, got {target!r}")
        self.members = list(parameterisations)
        self.terms = np.asarray(terms, dtype=int)
        self.term_weights = 1.0 / np.asarray(sigmas, dtype=float) ** 2
        self.target = target
        names = ", ".join(p.name for p in self.members)
        self.name = f"cells of {names} tied to their {target} ({', '.join(CELL_NAMES[t] for t in self.terms)})"

    def rows(self, problem) -> RestraintRows:
        n, m = len(self.members), len(self.terms)
        values, grads, cols = [], [], []
        for p in self.members:
            c, g = cell_and_gradients(p)
            cols.append(columns_in(problem, p))
            values.append(c[self.terms])
            grads.append(g[: len(cols[-1]), self.terms].T)  # (m, k_p); none if p is not in the problem
        values = np.array(values)
        centre = values.mean(axis=0) if self.target == "mean" else np.median(values, axis=0)
        w = _centre_weights(values, self.target)
        starts = np.concatenate([[0], np.cumsum([len(c) for c in cols])])
        J = np.zeros((n * m, int(starts[-1])))
        for j, g in enumerate(grads):
            a, b = starts[j], starts[j + 1]
            J[:, a:b] -= np.tile(w[j][:, None] * g, (n, 1))
            J[j * m:(j + 1) * m, a:b] += g
        return RestraintRows(
            residuals=(values - centre).reshape(-1),
            weights=np.tile(self.term_weights, n),
            jacobian=J,
            columns=np.concatenate(cols).astype(int),
        )
