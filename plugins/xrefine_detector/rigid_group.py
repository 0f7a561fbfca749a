"""The six-parameter rigid block: Dist, Shift1, Shift2 (mm) and Tau1, Tau2, Tau3 (mrad).

MATH.md 4.4 gives the composition.  Here it is written as a rigid motion applied to the frames
the panels had when the block was set up:

    x  ->  o_ref + R (x - o_ref0),    R = T3 T2 T1,    o_ref = Dist n0 + R (t1 e1 + t2 e2),

where (e1, e2, n0) is the block's initial orthonormal basis and o_ref0 its reference point
(panel axes only turn: fast -> R fast).
This is DIALS's "dorg + offsets in the (d1, d2, dn) basis" without storing the offsets: the
initial geometry is reproduced exactly at the initial values even when the stored axes are not
exactly orthogonal, and blocks nested in blocks can later be chained by composing their motions.
"""

from __future__ import annotations

from typing import Union

import numpy as np
from xrefine.geometry import rotation_matrix, rotation_matrix_derivative, unit
from xrefine.models import DetectorGroup

__all__ = ["PARAMETER_NAMES", "PARAMETER_UNITS", "RigidGroup"]

PARAMETER_NAMES = ("Dist", "Shift1", "Shift2", "Tau1", "Tau2", "Tau3")
PARAMETER_UNITS = ("mm", "mm", "mm", "mrad", "mrad", "mrad")

# Parameters store angles in mrad (MATH.md 4.0).
_MRAD = 1.0e-3


class RigidGroup:
    """One rigid block of panels with six parameters (MATH.md 4.4).

    `node` is what moves in the Detector: a DetectorGroup (its descendants follow through their
    local frames) or a panel index.  `panels` are the indices of every panel below `node`.
    The block's basis is built from `fast` and `slow` (Gram-Schmidt, keeping `fast`), and
    `reference_point` (lab, mm) must lie in the plane the rotations pivot about: the block's
    Dist is its distance along the normal, Shift1 and Shift2 its in-plane coordinates.
    `prefix` is put before the DIALS short names ('Group1' gives 'Group1Dist', ...).
    """

    def __init__(self, node: Union[DetectorGroup, int], panels, fast, slow, reference_point, prefix: str = ""):
        self.node = node
        self.panels = np.asarray(panels, dtype=int)
        e1 = unit(np.asarray(fast, dtype=float))
        normal = unit(np.cross(e1, np.asarray(slow, dtype=float)))
        self.basis = np.column_stack([e1, np.cross(normal, e1), normal])
        self.reference_point = np.asarray(reference_point, dtype=float)
        self.prefix = prefix

    @property
    def names(self) -> list:
        """Short parameter names in DIALS order, with the group prefix."""
        return [self.prefix + n for n in PARAMETER_NAMES]

    def initial_values(self) -> np.ndarray:
        """Dist and Shift1/Shift2 locating the reference point, Tau1-3 = 0 (mm, mm, mm, mrad x3)."""
        dist = self.reference_point @ self.basis[:, 2]
        t1 = self.reference_point @ self.basis[:, 0]
        t2 = self.reference_point @ self.basis[:, 1]
        return np.array([dist, t1, t2, 0.0, 0.0, 0.0])

    def _rotations(self, values):
        # T1 about the initial normal, T2 about the initial fast axis, T3 about the initial slow
        axes = (self.basis[:, 2], self.basis[:, 0], self.basis[:, 1])
        angles = np.asarray(values[3:6], dtype=float) * _MRAD
        T = [rotation_matrix(a, x) for a, x in zip(axes, angles)]
        dT = [rotation_matrix_derivative(a, x) * _MRAD for a, x in zip(axes, angles)]
        return T, dT

    def _pivot(self, values, R) -> np.ndarray:
        # o_ref = Dist n0 + R (t1 e1 + t2 e2): the rotations turn the in-plane shift about the
        # foot of the perpendicular, P0 = Dist n0
        return values[0] * self.basis[:, 2] + R @ (values[1] * self.basis[:, 0] + values[2] * self.basis[:, 1])

    def motion(self, values) -> tuple:
        """The rigid motion for parameter `values` (6,) as (R (3, 3), o_ref (3,)): a point x of
        the block at setup is now at o_ref + R (x - reference_point)."""
        values = np.asarray(values, dtype=float)
        (T1, T2, T3), _ = self._rotations(values)
        R = T3 @ T2 @ T1
        return R, self._pivot(values, R)

    def motion_derivatives(self, values) -> tuple:
        """d R / d p (6, 3, 3) and d o_ref / d p (6, 3) for each of the six parameters
        (per mm for Dist and the shifts, per mrad for the angles)."""
        values = np.asarray(values, dtype=float)
        (T1, T2, T3), (dT1, dT2, dT3) = self._rotations(values)
        R = T3 @ T2 @ T1
        dR = np.zeros((6, 3, 3))
        dR[3] = T3 @ T2 @ dT1
        dR[4] = T3 @ dT2 @ T1
        dR[5] = dT3 @ T2 @ T1
        d_pivot = np.empty((6, 3))
        d_pivot[0] = self.basis[:, 2]
        d_pivot[1] = R @ self.basis[:, 0]
        d_pivot[2] = R @ self.basis[:, 1]
        d_pivot[3:] = dR[3:] @ (values[1] * self.basis[:, 0] + values[2] * self.basis[:, 1])
        return dR, d_pivot

    def _relative(self, frames) -> np.ndarray:
        # origins relative to the reference point, so no two ~distance-sized terms cancel
        rel = np.array(frames, dtype=float)
        rel[..., 2] -= self.reference_point
        return rel

    def moved(self, values, frames) -> np.ndarray:
        """Frames (m, 3, 3), columns [fast | slow | origin] as they were at setup, moved to
        where `values` put the block."""
        R, pivot = self.motion(values)
        out = np.einsum("ij,mjc->mic", R, self._relative(frames))
        out[..., 2] += pivot
        return out

    def moved_derivatives(self, values, frames) -> np.ndarray:
        """d(moved frames)/dp (6, m, 3, 3) for frames (m, 3, 3) as they were at setup."""
        dR, d_pivot = self.motion_derivatives(values)
        out = np.einsum("kij,mjc->kmic", dR, self._relative(frames))
        out[..., 2] += d_pivot[:, None, :]
        return out

    def rebased(self, values) -> "RigidGroup":
        """The same block with its basis and reference point carried to where `values` put them,
        so that its initial values describe the current position with all angles zero."""
        R, pivot = self.motion(values)
        basis = R @ self.basis
        return RigidGroup(self.node, self.panels, basis[:, 0], basis[:, 1], pivot, self.prefix)
