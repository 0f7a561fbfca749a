"""The rigid motion of a six-parameter detector block (MATH.md 4.4), vectorised over blocks.

A block with orthonormal basis (e1, e2, n0) and values (Dist, t1, t2 [mm], tau1, tau2, tau3
[mrad]) moves a point x it held at setup, when its reference point was x_ref, to

    c + R (x - x_ref),    R = T3 T2 T1,    c = Dist n0 + R (t1 e1 + t2 e2),

with T1 about n0, T2 about e1 and T3 about e2; directions (panel axes) turn by R only.  This is
DIALS's "dorg + offsets in the (d1, d2, dn) basis" without storing the offsets: the initial
geometry is reproduced exactly at the initial values even when stored axes are not exactly
orthogonal, and nested blocks chain by composing their motions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["axis_rotations", "block_motions", "block_motion_derivatives"]

# Parameters store angles in mrad (MATH.md 4.0).
MRAD = 1.0e-3


def axis_rotations(axes: np.ndarray, angles_rad: np.ndarray) -> tuple:
    """Rotations R (m, 3, 3) about unit `axes` (m, 3) by `angles_rad` (m,), and dR/dangle
    (m, 3, 3) per radian (Rodrigues, MATH.md notation)."""
    c = np.cos(angles_rad)[:, None, None]
    s = np.sin(angles_rad)[:, None, None]
    outer = axes[:, :, None] * axes[:, None, :]
    K = np.zeros((len(axes), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -axes[:, 2], axes[:, 1], -axes[:, 0]
    K -= K.transpose(0, 2, 1)
    eye = np.eye(3)
    return c * eye + (1.0 - c) * outer + s * K, s * (outer - eye) + c * K


def _rotations(bases: np.ndarray, values: np.ndarray, derivatives: bool):
    # T1 about the initial normal, T2 about the initial fast axis, T3 about the initial slow
    G = len(bases)
    axes = np.concatenate([bases[:, :, 2], bases[:, :, 0], bases[:, :, 1]])
    T, dT = axis_rotations(axes, MRAD * values[:, 3:6].T.reshape(-1))
    T1, T2, T3 = T[:G], T[G : 2 * G], T[2 * G :]
    T32 = T3 @ T2
    R = T32 @ T1
    if not derivatives:
        return R, None
    dT = MRAD * dT
    dR = np.stack([T32 @ dT[:G], T3 @ dT[G : 2 * G] @ T1, dT[2 * G :] @ T2 @ T1], axis=1)
    return R, dR


def _in_plane_shift(bases: np.ndarray, values: np.ndarray) -> np.ndarray:
    return values[:, 1:2] * bases[:, :, 0] + values[:, 2:3] * bases[:, :, 1]


def block_motions(bases: np.ndarray, values: np.ndarray) -> tuple:
    """(R (G, 3, 3), c (G, 3)) of G blocks with orthonormal `bases` (G, 3, 3), columns
    (e1, e2, n0), at parameter `values` (G, 6)."""
    R, _ = _rotations(bases, values, False)
    pivot = values[:, :1] * bases[:, :, 2] + np.einsum("gij,gj->gi", R, _in_plane_shift(bases, values))
    return R, pivot


def block_motion_derivatives(bases: np.ndarray, values: np.ndarray) -> tuple:
    """(R, c) as `block_motions` gives them, with dR/dtau (G, 3, 3, 3) for Tau1-3 (per mrad;
    zero for Dist and the shifts, so not stored) and dc/dp (G, 6, 3) for all six parameters
    (per mm, per mrad)."""
    R, dR = _rotations(bases, values, True)
    shift = _in_plane_shift(bases, values)
    pivot = values[:, :1] * bases[:, :, 2] + np.einsum("gij,gj->gi", R, shift)
    d_pivot = np.empty((len(bases), 6, 3))
    d_pivot[:, 0] = bases[:, :, 2]
    d_pivot[:, 1:3] = np.einsum("gij,gjk->gki", R, bases[:, :, :2])
    d_pivot[:, 3:] = np.einsum("gkij,gj->gki", dR, shift)
    return R, pivot, dR, d_pivot
