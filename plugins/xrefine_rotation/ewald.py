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
    """M = [m1 | m2 | m3] as columns: (3, 3), or component-major (3, 3, n) (M[:, j, i] is m_j
    of reflection i) when s0_datum is (3, n), one beam per reflection.

    axis: the datum rotation axis e_d; s0_datum: the beam in the datum frame, S^T s0.
    """
    m2 = unit(axis)
    if s0_datum.ndim == 1:
        m1 = unit(np.cross(m2, s0_datum))
        return np.column_stack([m1, m2, np.cross(m1, m2)])
    m1 = np.cross(m2, s0_datum, axisb=0, axisc=0)
    m1 /= np.linalg.norm(m1, axis=0)
    m3 = np.cross(m1, m2, axisa=0, axisc=0)
    return np.stack([m1, np.broadcast_to(m2[:, None], m1.shape), m3], axis=1)


def rotation_solutions(p_m: np.ndarray, s0_m: np.ndarray, sign) -> tuple:
    """The rotation that brings each relp onto the Ewald sphere.

    Arrays are component-major so that every operation runs over reflections:
    p_m: (3, n) relp at phi = 0 (F U B h) in the basis M; s0_m: (3,) or (3, n) the datum-frame
    beam in the basis M (its first component is zero); sign: +1 for the entering solution,
    -1 for the exiting one (scalar or (n,)).

    Returns (q, phi, ok): q (3, n) the relp on the sphere in the basis M, phi (n,) the rotation
    angle in [0, 2 pi) rad, ok (n,) False where there is no solution.  With this basis,
    Delta = (e x r) . s0 = -q1 (s0_m)3 and (s0_m)3 > 0, so sign = +1 (q1 > 0) is entering.
    """
    pm1, pm2, pm3 = p_m
    s0m2, s0m3 = s0_m[1], s0_m[2]
    q = np.empty_like(p_m)
    q[1] = pm2
    rho2 = pm1 * pm1 + pm3 * pm3
    # Ewald condition |p|^2 + 2 s0.r = 0 fixes the m3 component of the rotated relp
    np.divide(-0.5 * (rho2 + pm2 * pm2) - pm2 * s0m2, s0m3, out=q[2])
    disc = rho2 - q[2] * q[2]
    ok = disc >= 0.0  # the relp's circle about e_d reaches the sphere (never when |p| > 2|s0|)
    np.multiply(sign, np.sqrt(np.maximum(disc, 0.0)), out=q[0])
    phi = np.arctan2(q[0] * pm3 - q[2] * pm1, q[0] * pm1 + q[2] * pm3)
    phi += (phi < 0.0) * (2.0 * np.pi)
    return q, phi, ok
