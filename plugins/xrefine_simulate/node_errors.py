"""Calibration errors of detector nodes: small rigid displacements of a module, sensor or
quadrant from where the detector description puts it.

An error is six numbers (ERROR_COLUMNS): a shift along the node's own ideal fast and slow axes
and normal (mm), and rotations (mrad) about its normal, fast and slow axes through the node's
centre, applied as R(normal) R(slow) R(fast) (the convention of tests/data/p6m-modules-small's
generator, so the recorded errors read the same way).
"""

from __future__ import annotations

import numpy as np
from xrefine.geometry import rotation_matrix, unit

__all__ = ["ERROR_COLUMNS", "draw_errors", "displaced_frame"]

ERROR_COLUMNS = ("dfast_mm", "dslow_mm", "dnormal_mm", "rot_normal_mrad", "rot_fast_mrad", "rot_slow_mrad")


def draw_errors(rng: np.random.Generator, n: int, inplane_mm: float, normal_mm: float, tilt_mrad: float) -> np.ndarray:
    """(n, 6) errors, each component Gaussian with the given sigma (ERROR_COLUMNS order)."""
    sigma = np.array([inplane_mm, inplane_mm, normal_mm, tilt_mrad, tilt_mrad, tilt_mrad])
    return rng.normal(size=(n, 6)) * sigma


def displaced_frame(fast, slow, origin, centre, error) -> tuple:
    """(fast, slow, origin) of a node whose ideal frame is (fast, slow, origin) and whose
    centre is at `centre` (all in the parent's coordinates), displaced by `error` (6,)."""
    fast, slow, origin, centre = (np.asarray(v, dtype=float) for v in (fast, slow, origin, centre))
    normal = unit(np.cross(fast, slow))
    dfast, dslow, dnormal, rot_normal, rot_fast, rot_slow = error
    R = (rotation_matrix(normal, 1e-3 * rot_normal) @ rotation_matrix(unit(slow), 1e-3 * rot_slow)
         @ rotation_matrix(unit(fast), 1e-3 * rot_fast))
    shift = dfast * unit(fast) + dslow * unit(slow) + dnormal * normal
    return R @ fast, R @ slow, centre + R @ (origin - centre) + shift
