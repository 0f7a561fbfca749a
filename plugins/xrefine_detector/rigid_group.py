"""One six-parameter rigid block: Dist, Shift1, Shift2 (mm) and Tau1, Tau2, Tau3 (mrad).

A block is the node of the detector hierarchy it moves, the panels below it, an orthonormal
basis and a reference point; rigid_motion.py turns parameter values into its motion.
"""

from __future__ import annotations

from typing import Union

import numpy as np
from xrefine.geometry import unit
from xrefine.models import DetectorGroup

from .rigid_motion import block_motions

__all__ = ["PARAMETER_NAMES", "PARAMETER_UNITS", "RigidGroup"]

PARAMETER_NAMES = ("Dist", "Shift1", "Shift2", "Tau1", "Tau2", "Tau3")
PARAMETER_UNITS = ("mm", "mm", "mm", "mrad", "mrad", "mrad")


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

    def motion(self, values) -> tuple:
        """(R (3, 3), o_ref (3,)) for parameter `values` (6,): a point x of the block at setup
        is now at o_ref + R (x - reference_point); axes turn by R."""
        R, pivot = block_motions(self.basis[None], np.asarray(values, dtype=float)[None])
        return R[0], pivot[0]
