"""Symmetry-constrained unit-cell parameterisation: the independent elements of the reciprocal
metric G* = B^T B, scaled by 1e5 (MATH.md 4.3)."""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

import numpy as np

from xrefine.models import Crystal, reciprocal_B_from_metric
from xrefine.parameters import Parameter, Parameterisation

from .fixing import apply_fix
from .symmetry import metric_constraints, metric_matrix, metric_vector, rotation_parts, space_group_ops, symmetrised_metric

__all__ = ["CrystalUnitCellParameterisation", "make_crystal_unit_cell_parameterisation", "METRIC_SCALE"]

#: parameter value = METRIC_SCALE * metric element (1/Angstrom^2)
METRIC_SCALE = 1e5


class CrystalUnitCellParameterisation(Parameterisation):
    """B from the symmetry-independent elements of G* (parameters ``g_param_0``, ... as DIALS).

    The space group (from the crystal's Hall symbol) gives g = T g_ind (see
    `symmetry.metric_constraints`); parameter k is 1e5 * g_ind[k] (unit 1e-5/Angstrom^2).  At
    construction G* is averaged over the group's rotations and written back, so the crystal is
    exactly symmetric from the start.  B is the lower-triangular matrix with positive diagonal
    and B^T B = G*; `compose` keeps the crystal's current U.
    """

    kind = "crystal.B"

    def __init__(self, crystal: Crystal, experiment_ids: Sequence[int] = (0,), name: str = "Crystal1"):
        super().__init__(crystal, experiment_ids, name)
        rotations = rotation_parts(space_group_ops(crystal.space_group_hall_symbol))
        self.T, self.independent = metric_constraints(rotations)
        B = crystal.B
        g = metric_vector(symmetrised_metric(B.T @ B, rotations))
        self.parameters = [
            Parameter(f"g_param_{k}", float(METRIC_SCALE * g[i]), "1e-5/Angstrom^2")
            for k, i in enumerate(self.independent)
        ]
        self.compose()

    def metric(self) -> np.ndarray:
        """The six metric elements (g00, g11, g22, g01, g02, g12), 1/Angstrom^2."""
        return self.T @ np.array([p.value for p in self.parameters]) / METRIC_SCALE

    def state(self) -> np.ndarray:
        """B (3, 3), 1/Angstrom."""
        return reciprocal_B_from_metric(self.metric())

    def state_derivatives(self) -> np.ndarray:
        """dB / dp (k, 3, 3) per unit of the scaled parameters.

        With dG* symmetric, L = dB B^-1 is lower triangular and L + L^T = B^-T dG* B^-1 = M,
        so dB = (tril(M, -1) + diag(M) / 2) B.
        """
        B = self.state()
        Binv = np.linalg.inv(B)
        free = [k for k, p in enumerate(self.parameters) if not p.fixed]
        dG = metric_matrix(self.T[:, free].T) / METRIC_SCALE  # (k, 3, 3)
        M = Binv.T @ dG @ Binv
        L = np.tril(M, -1) + 0.5 * M * np.eye(3)
        return (L @ B).reshape(-1, 3, 3)

    def compose(self) -> None:
        self.model.set_UB(self.model.U, self.state())

    def cell_parameter_gradients(self) -> np.ndarray:
        """d(a, b, c, alpha, beta, gamma) / dp (k, 6) for the free parameters: Angstrom and
        degrees per unit of the scaled parameters (MATH.md 9.1), for esd propagation and cell
        restraints."""
        B = self.state()
        orth = np.linalg.inv(B.T)  # columns: direct vectors a, b, c
        d_orth = -orth @ np.transpose(self.state_derivatives(), (0, 2, 1)) @ orth  # (k, 3, 3)
        vec = orth.T  # rows a, b, c
        dvec = np.transpose(d_orth, (0, 2, 1))  # (k, 3 vectors, 3 components)
        length = np.linalg.norm(vec, axis=1)
        hat = vec / length[:, None]
        out = np.empty((dvec.shape[0], 6))
        out[:, :3] = np.einsum("kij,ij->ki", dvec, hat)
        # angle between vectors i and j: alpha (b, c), beta (a, c), gamma (a, b)
        for col, (i, j) in zip((3, 4, 5), ((1, 2), (0, 2), (0, 1))):
            cos = hat[i] @ hat[j]
            sin = np.sqrt(max(1.0 - cos * cos, 0.0))
            grad_i = (cos * hat[i] - hat[j]) / (length[i] * sin)
            grad_j = (cos * hat[j] - hat[i]) / (length[j] * sin)
            out[:, col] = np.degrees(dvec[:, i] @ grad_i + dvec[:, j] @ grad_j)
        return out


def make_crystal_unit_cell_parameterisation(
    crystal: Crystal,
    experiment_ids: Sequence[int],
    name: str = "Crystal1",
    fix: Optional[Union[str, Iterable]] = None,
) -> CrystalUnitCellParameterisation:
    """Parameterise a crystal's unit cell (shared by `experiment_ids`), symmetry-constrained by
    its space group.

    fix: ``all``, parameter names (g_param_0, ...; case-insensitive, substrings allowed as in
    DIALS's ``crystal.unit_cell.fix_list``) or 0-based indices.  Default: nothing fixed.
    """
    param = CrystalUnitCellParameterisation(crystal, experiment_ids, name)
    apply_fix(param, fix, {}, "crystal.unit_cell.fix")
    return param
