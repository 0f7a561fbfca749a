"""Space-group symmetry: the group of a crystal's Hall symbol, and the linear constraints its
rotations put on the reciprocal metric G* (MATH.md 4.3).

The element order of a metric vector g is (g00, g11, g22, g01, g02, g12) throughout.
"""

from __future__ import annotations

from fractions import Fraction

import gemmi
import numpy as np

from xrefine.errors import InputError

__all__ = [
    "METRIC_ELEMENTS",
    "space_group_ops",
    "rotation_parts",
    "metric_constraints",
    "metric_vector",
    "metric_matrix",
    "symmetrised_metric",
]

#: (row, column) of each element of a metric vector
METRIC_ELEMENTS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))


def space_group_ops(hall_symbol: str) -> gemmi.GroupOps:
    """The symmetry operations of a Hall symbol (e.g. ``" P 4nw 2abw"``).

    Works for settings that gemmi does not tabulate too, because the operations are generated
    from the symbol itself rather than looked up.
    """
    try:
        return gemmi.symops_from_hall(hall_symbol)
    except (RuntimeError, ValueError) as exc:
        raise InputError(
            f"crystal space_group_hall_symbol {hall_symbol!r} is not a valid Hall symbol ({exc}); "
            "correct it in the experiment list."
        ) from None


def lattice_absences(ops: gemmi.GroupOps, hkl: np.ndarray) -> np.ndarray:
    """True for the Miller indices (m, 3) the lattice centring extinguishes: h.t not an integer
    for some centring translation t.  These are the only absences DIALS's predictors remove (they
    generate indices in the derived Patterson group); screw-axis and glide absences are kept."""
    cen = np.array(ops.cen_ops, dtype=np.int64).reshape(-1, 3)
    hkl = np.asarray(hkl, dtype=np.int64)
    if len(cen) <= 1:
        return np.zeros(len(hkl), dtype=bool)
    return np.any((hkl @ cen.T) % gemmi.Op.DEN != 0, axis=1)


def rotation_parts(ops: gemmi.GroupOps) -> np.ndarray:
    """Integer rotation matrices (m, 3, 3) of the group, direct-space fractional convention.

    Centring translations are irrelevant for the metric, so only the coset representatives'
    rotations are returned.
    """
    return np.array([np.array(op.rot) // gemmi.Op.DEN for op in ops.sym_ops], dtype=np.int64)


def metric_vector(G: np.ndarray) -> np.ndarray:
    """The six distinct elements of symmetric matrices G (..., 3, 3) -> (..., 6)."""
    return np.stack([G[..., i, j] for i, j in METRIC_ELEMENTS], axis=-1)


def metric_matrix(g: np.ndarray) -> np.ndarray:
    """Symmetric matrices (..., 3, 3) from metric vectors (..., 6)."""
    g = np.asarray(g, dtype=float)
    G = np.empty(g.shape[:-1] + (3, 3))
    for k, (i, j) in enumerate(METRIC_ELEMENTS):
        G[..., i, j] = g[..., k]
        G[..., j, i] = g[..., k]
    return G


def symmetrised_metric(G: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """The group average (1/|G|) sum_R R G* R^T of a reciprocal metric G* (3, 3)."""
    R = rotations.astype(float)
    return np.mean(R @ G @ np.transpose(R, (0, 2, 1)), axis=0)


def metric_constraints(rotations: np.ndarray) -> tuple:
    """The reduction g = T g_ind imposed by R G* R^T = G* for every rotation R.

    Returns (T, independent): T is (6, k) and `independent` the indices of the k elements of g
    chosen as free.  As in cctbx, the invariance equations are brought to reduced row-echelon
    form with left-most pivots and the non-pivot columns are the independent elements; this
    reproduces DIALS's `g_param_i` ordering (MATH.md 4.3 table).  Exact rational arithmetic
    keeps the pivot choice free of rounding.
    """
    rows = []
    for R in np.asarray(rotations, dtype=np.int64):
        # column j: the change of the six elements when only element j of g is one
        A = np.zeros((6, 6), dtype=np.int64)
        for j, (a, b) in enumerate(METRIC_ELEMENTS):
            E = np.zeros((3, 3), dtype=np.int64)
            E[a, b] = E[b, a] = 1
            A[:, j] = metric_vector(R @ E @ R.T - E)
        rows.extend(tuple(int(x) for x in r) for r in A if r.any())
    rref, pivots = _reduced_row_echelon([[Fraction(x) for x in r] for r in set(rows)])
    independent = [c for c in range(6) if c not in pivots]
    T = np.zeros((6, len(independent)))
    for j, c in enumerate(independent):
        T[c, j] = 1.0
        for r, pc in enumerate(pivots):
            if rref[r][c] != 0:
                T[pc, j] = -float(rref[r][c])
    return T, np.array(independent, dtype=int)


def _reduced_row_echelon(rows: list) -> tuple:
    """Reduced row-echelon form (left-most pivots) of a list of Fraction rows; returns the
    non-zero rows and their pivot columns."""
    rows = [r[:] for r in sorted(rows, reverse=True)]
    ncol = 6
    pivots = []
    r = 0
    for c in range(ncol):
        pivot = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        lead = rows[r][c]
        rows[r] = [x / lead for x in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                f = rows[i][c]
                rows[i] = [x - f * y for x, y in zip(rows[i], rows[r])]
        pivots.append(c)
        r += 1
        if r == len(rows):
            break
    return rows[: len(pivots)], pivots
