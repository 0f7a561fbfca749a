"""Crystal orientation parameterisation: three small rotations of U about x, y, z (MATH.md 4.2)."""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

import numpy as np

from xrefine.geometry import rotation_matrix, rotation_matrix_derivative
from xrefine.models import Crystal
from xrefine.parameters import Parameter, Parameterisation

from .fixing import apply_fix

__all__ = ["CrystalOrientationParameterisation", "make_crystal_orientation_parameterisation"]

_AXES = np.eye(3)


class CrystalOrientationParameterisation(Parameterisation):
    """U = Phi3 Phi2 Phi1 U0, Phi_i a rotation by ``Phi<i>`` / 1000 rad about the i-th axis
    (x, y, z) of the frame U acts in (the goniometer datum frame at phi = 0).

    Parameters ``Phi1``, ``Phi2``, ``Phi3`` (mrad, DIALS names) start at zero with U0 the
    crystal's orientation at construction.  `compose` keeps the crystal's current B, so an
    orientation and a unit-cell parameterisation can share one crystal.
    """

    kind = "crystal.U"

    def __init__(self, crystal: Crystal, experiment_ids: Sequence[int] = (0,), name: str = "Crystal1"):
        super().__init__(crystal, experiment_ids, name)
        self.U0 = crystal.U
        self.parameters = [Parameter(f"Phi{i + 1}", 0.0, "mrad") for i in range(3)]

    def _factors(self) -> tuple:
        angles = [p.value / 1000.0 for p in self.parameters]
        R = [rotation_matrix(_AXES[i], a) for i, a in enumerate(angles)]
        dR = [rotation_matrix_derivative(_AXES[i], a) for i, a in enumerate(angles)]
        return R, dR

    def state(self) -> np.ndarray:
        """U (3, 3)."""
        (R1, R2, R3), _ = self._factors()
        return R3 @ R2 @ R1 @ self.U0

    def state_derivatives(self) -> np.ndarray:
        """dU / dPhi_i (k, 3, 3), per mrad."""
        (R1, R2, R3), (dR1, dR2, dR3) = self._factors()
        full = [
            R3 @ R2 @ dR1 @ self.U0,
            R3 @ dR2 @ R1 @ self.U0,
            dR3 @ R2 @ R1 @ self.U0,
        ]
        return np.array([d / 1000.0 for d, p in zip(full, self.parameters) if not p.fixed]).reshape(-1, 3, 3)

    def compose(self) -> None:
        self.model.set_UB(self.state(), self.model.B)

    def rebase(self) -> None:
        """U0 = current U and all angles back to zero (the state is unchanged)."""
        self.U0 = self.state()
        for p in self.parameters:
            p.value = 0.0


def make_crystal_orientation_parameterisation(
    crystal: Crystal,
    experiment_ids: Sequence[int],
    name: str = "Crystal1",
    fix: Optional[Union[str, Iterable]] = None,
) -> CrystalOrientationParameterisation:
    """Parameterise a crystal's orientation (shared by `experiment_ids`).

    fix: ``all``, parameter names (Phi1, Phi2, Phi3; case-insensitive, substrings allowed as in
    DIALS's ``crystal.orientation.fix_list``) or 0-based indices.  Default: nothing fixed.
    """
    param = CrystalOrientationParameterisation(crystal, experiment_ids, name)
    apply_fix(param, fix, {}, "crystal.orientation.fix")
    return param
