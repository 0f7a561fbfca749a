"""The rotation-method Ewald solution in the goniometer datum frame (MATH.md 2.1).

Everything here works in the orthonormal basis M = [m1 | m2 | m3] of the datum frame with
m2 = e_d (the rotation axis), m1 = unit(m2 x s0') and m3 = m1 x m2, where s0' = S^T s0.  In this
basis a rotation about e_d only mixes the m1 and m3 components, the beam has no m1 component,
and the relp on the sphere has closed-form components, so no rotation matrix per reflection is
ever built.
"""

from __future__ import annotations

import numpy as np

from xrefine.geometry import unit

__all__ = ["datum_basis", "rotation_solutions"]


def datum_basis(axis: np.ndarray, s0_datum: np.ndarray) -> np.ndarray:
    """M = [m1 | m2 | m3] as columns: (3, 3), or (n, 3, 3) when s0_datum is (n, 3).

    axis: the datum rotation axis e_d; s0_datum: the beam in the datum frame, S^T s0.
    """
    m2 = unit(axis)
    m1 = unit(np.cross(m2, s0_datum))
    m3 = np.cross(m1, m2)
    return np.stack([m1, np.broadcast_to(m2, m1.shape), m3], axis=-1)


def rotation_solutions(p_m: np.ndarray, s0_m: np.ndarray, sign) -> tuple:
    """The rotation that brings each relp onto the Ewald sphere.

    p_m: (n, 3) relp at phi = 0 (F U B h) in the basis M; s0_m: (3,) or (n, 3) the datum-frame
    beam in the basis M (its first component is zero); sign: +1 for the entering solution,
    -1 for the exiting one (scalar or (n,)).

    Returns (q, phi, ok): q (n, 3) the relp on the sphere in the basis M, phi (n,) the rotation
    angle in [0, 2 pi) rad, ok (n,) False where there is no solution.  With this basis,
    Delta = (e x r) . s0 = -q1 (s0_m)3 and (s0_m)3 > 0, so sign = +1 (q1 > 0) is entering.
    """
    pm1, pm2, pm3 = p_m[:, 0], p_m[:, 1], p_m[:, 2]
    s0m2, s0m3 = s0_m[..., 1], s0_m[..., 2]
    psq = pm1 * pm1 + pm2 * pm2 + pm3 * pm3
    p3 = (-0.5 * psq - pm2 * s0m2) / s0m3
    disc = psq - pm2 * pm2 - p3 * p3
    s0sq = s0m2 * s0m2 + s0m3 * s0m3
    ok = (disc >= 0.0) & (psq <= 4.0 * s0sq) & (psq > 0.0)
    p1 = sign * np.sqrt(np.where(ok, disc, 0.0))
    phi = np.mod(np.arctan2(p1 * pm3 - p3 * pm1, p1 * pm1 + p3 * pm3), 2.0 * np.pi)
    return np.column_stack([p1, pm2, p3]), phi, ok
