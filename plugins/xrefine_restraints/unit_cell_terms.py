"""The real-space cell of a unit-cell parameterisation, its gradients, and which of its six
parameters a restraint may act on (MATH.md 9.1)."""

from __future__ import annotations

import numpy as np

from xrefine.cell import cell_gradients
from xrefine.models import cell_parameters

__all__ = ["CELL_NAMES", "ZERO_GRADIENT", "restrainable_cells", "cell_and_gradients", "restrained_terms", "columns_in"]

CELL_NAMES = ("a", "b", "c", "alpha", "beta", "gamma")

#: a cell parameter whose gradients are all below this (Angstrom or degrees per scaled unit)
#: is fixed by symmetry
ZERO_GRADIENT = 1e-10


def restrainable_cells(parameterisations) -> list:
    """The static unit-cell parameterisations (kind crystal.B); scan-varying cells are not
    restrained, as in DIALS."""
    return [p for p in parameterisations if p.kind == "crystal.B" and not p.scan_varying]


def cell_and_gradients(p) -> tuple:
    """(a, b, c, alpha, beta, gamma) (6,) of the parameterisation's current B, and their
    derivatives with respect to its free parameters (k, 6), Angstrom and degrees."""
    B = p.state()
    cell = cell_parameters(np.linalg.inv(B))  # rows of B^-1 are the direct vectors (U = I)
    if p.num_free == 0:
        return cell, np.zeros((0, 6))
    return cell, cell_gradients(B, p.state_derivatives())


def _same_term(cell, grads, i: int, j: int) -> bool:
    """Cell parameters i and j are equal by symmetry: equal values and equal gradients."""
    if abs(cell[i] - cell[j]) > 1e-8 * max(abs(cell[i]), 1.0):
        return False
    scale = max(np.abs(grads[:, i]).max(initial=0.0), np.abs(grads[:, j]).max(initial=0.0))
    return bool(np.all(np.abs(grads[:, i] - grads[:, j]) <= 1e-6 * scale))


def restrained_terms(cell: np.ndarray, grads: np.ndarray, sigmas: np.ndarray) -> tuple:
    """(indices into CELL_NAMES, their sigmas) of the cell parameters to restrain.

    Dropped: sigma 0; parameters fixed by symmetry (every gradient below ZERO_GRADIENT); of
    parameters equal by symmetry (a = b, alpha = beta = gamma, ...) all but the one with the
    smallest sigma, so that one condition is not counted twice."""
    sig = np.array(sigmas, dtype=float)
    if grads.shape[0] == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    sig[np.all(np.abs(grads) < ZERO_GRADIENT, axis=0)] = 0.0
    for first in (0, 3):
        for i in range(first, first + 3):
            for j in range(i + 1, first + 3):
                if sig[i] > 0 and sig[j] > 0 and _same_term(cell, grads, i, j):
                    if sig[j] < sig[i]:
                        sig[i] = 0.0
                    else:
                        sig[j] = 0.0
    terms = np.flatnonzero(sig > 0)
    return terms, sig[terms]


def columns_in(problem, p) -> np.ndarray:
    """Full-vector columns of p's free parameters in `problem` (none if p is not in it)."""
    for i, q in enumerate(problem.parameterisations):
        if q is p:
            return int(problem.offsets[i]) + np.arange(p.num_free)
    return np.zeros(0, dtype=int)
