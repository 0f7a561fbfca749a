"""The rotation-method predictor: calculated (X, Y, phi) of observed reflections and their
derivatives with respect to every state kind (MATH.md 2.1-2.3 and 3).

How the arithmetic is laid out (it decides the speed):
- per-reflection vectors are stored component-major, (3, n), and per-reflection 3x3 matrices
  as (3, 3, n), so every NumPy operation loops over reflections, and a static model matrix
  acts on a whole batch as one BLAS product;
- reflections are processed in chunks of `CHUNK_ROWS`, so temporaries stay in the CPU cache;
- states and derivative values given per reflection are converted to the same component-major
  layout once per call.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from xrefine.geometry import unit
from xrefine.models import Experiment
from xrefine.predictor import ExperimentState, PredictionBlock, Predictor, StateDerivative

from .ewald import datum_basis, rotation_solutions
from .full_scan import predict_all

__all__ = ["RotationPredictor", "MIN_ABS_DELTA", "CHUNK_ROWS"]

#: |Delta| = |(e x r) . s0| (1/Angstrom^2) at or below which a prediction is rejected: d phi / dp
#: is proportional to 1 / Delta, so such rows would swamp the normal equations.
MIN_ABS_DELTA = 1e-10

#: reflections per internal chunk: a chunk's temporaries fit in a core's L2 cache
CHUNK_ROWS = 4096

_TWO_PI = 2.0 * np.pi
#: number of axes of a static derivative value, per state kind
_STATE_NDIM = {"beam.s0": 2, "crystal.U": 3, "crystal.B": 3, "goniometer.S": 3, "detector.d": 3}


# ------------------------------------------------------------------------------------------
# Small linear algebra on static ((3,), (3, 3)) or per-reflection ((3, n), (3, 3, n)) operands.
def _component_major(x: np.ndarray, static_ndim: int) -> np.ndarray:
    """Input with a leading reflection axis -> component-major copy; static input unchanged."""
    x = np.asarray(x, dtype=float)
    return x if x.ndim == static_ndim else np.ascontiguousarray(np.moveaxis(x, 0, -1))


def _mT(A: np.ndarray) -> np.ndarray:
    return A.T if A.ndim == 2 else A.transpose(1, 0, 2)


def _mv(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A v."""
    if A.ndim == 2:
        return A @ v
    return np.einsum("ijn,jn->in" if v.ndim == 2 else "ijn,j->in", A, v)


def _mm(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A B."""
    if A.ndim == 2 and B.ndim == 2:
        return A @ B
    if A.ndim == 2:
        return (A @ B.reshape(3, -1)).reshape(B.shape)
    if B.ndim == 2:
        # row i of the result is B^T applied to row i of A: one product for all rows
        return np.matmul(B.T, A)
    return np.einsum("ijn,jkn->ikn", A, B)


def _bc(x: np.ndarray) -> np.ndarray:
    """A static vector (3,) as (3, 1), so that it broadcasts against (3, n)."""
    return x[:, None] if x.ndim == 1 else x


def _inverse(d: np.ndarray) -> np.ndarray:
    """Inverse of a 3x3 matrix or of per-reflection matrices (3, 3, n) (adjugate / determinant,
    which is much faster than a LAPACK call per matrix)."""
    if d.ndim == 2:
        return np.linalg.inv(d)
    c0, c1, c2 = d[:, 0], d[:, 1], d[:, 2]
    adj_rows = np.stack([np.cross(c1, c2, axis=0), np.cross(c2, c0, axis=0), np.cross(c0, c1, axis=0)])
    det = np.einsum("in,in->n", c0, adj_rows[0])
    return adj_rows / det


def _cut(x: np.ndarray, rows: slice, static_ndim: int) -> np.ndarray:
    """The chunk's part of a static or per-reflection array."""
    return x if x.ndim == static_ndim else x[..., rows]


class RotationPredictor(Predictor):
    """Predictions for rotation scans: X, Y (mm on the reflection's panel) and phi (rad).

    `predict` re-predicts observed reflections, each for its own Miller index and entering flag
    (entering iff s1 . (s0 x e) < 0, e = S e_d), on the same turn as its observed phi.  States
    may be static or carry a leading per-reflection axis (scan-varying models), as may the
    derivative values.  Rows with no Ewald solution, a ray that does not reach the panel plane
    (v_z <= 0) or |Delta| <= MIN_ABS_DELTA are invalid and hold NaN.

    Derivatives are supported for ``beam.s0``, ``crystal.U``, ``crystal.B``, ``goniometer.S``
    and ``detector.d`` (of the batch's panel).  The Jacobian is returned as an (n, 3, K) view
    of a (3, K, n) array, the layout it is computed in; `np.ascontiguousarray` it if C order
    matters (gathering rows from it, as the normal-equation assembly does, costs the same).
    """

    dimensions = ("X", "Y", "phi")

    def applies_to(self, experiment: Experiment) -> bool:
        """A goniometer and a scan with a non-zero oscillation width."""
        return experiment.goniometer is not None and experiment.scan is not None and experiment.scan.oscillation[1] != 0.0

    def predict(
        self,
        state: ExperimentState,
        miller_index: np.ndarray,
        entering: np.ndarray,
        phi_obs: Optional[np.ndarray],
        derivatives: Sequence[StateDerivative] = (),
    ) -> PredictionBlock:
        """Predict n reflections of one panel; see the class docstring.

        miller_index (n, 3); entering (n,) bool; phi_obs (n,) rad, or None to return phi in
        [0, 2 pi).  The Jacobian (n, 3, K) has the columns of `derivatives` in order.
        """
        hT = np.ascontiguousarray(np.asarray(miller_index, dtype=float).reshape(-1, 3).T)
        n = hT.shape[1]
        sign = np.where(np.asarray(entering, dtype=bool), 1.0, -1.0)
        phi_obs = None if phi_obs is None else np.asarray(phi_obs, dtype=float)
        frame = _frame(state)
        groups = [_group(g, frame) for g in derivatives]
        K = sum(k for _, _, k in groups)

        xyz = np.empty((n, 3))
        s1 = np.empty((n, 3))
        valid = np.empty(n, dtype=bool)
        # filled as (3, K, n) so that every product writes contiguous rows
        jacobian_t = np.empty((3, K, n)) if groups else None
        with np.errstate(invalid="ignore", divide="ignore"):
            for a in range(0, n, CHUNK_ROWS):
                rows = slice(a, min(a + CHUNK_ROWS, n))
                _predict_chunk(
                    {key: _cut(x, rows, 1 if key in ("s0", "s0_m") else 2) for key, x in frame.items()},
                    hT[:, rows],
                    sign[rows],
                    None if phi_obs is None else phi_obs[rows],
                    [(kind, _cut(G, rows, _STATE_NDIM[kind]), k) for kind, G, k in groups],
                    xyz[rows],
                    s1[rows],
                    valid[rows],
                    None if jacobian_t is None else jacobian_t[:, :, rows],
                )
        xyz[~valid] = np.nan
        s1[~valid] = np.nan
        jacobian = None
        if jacobian_t is not None:
            jacobian_t[:, :, ~valid] = np.nan
            jacobian = jacobian_t.transpose(2, 0, 1)
        return PredictionBlock(xyz=xyz, s1=s1, valid=valid, jacobian=jacobian)

    def predict_all(self, experiment: Experiment, d_min: Optional[float] = None):
        """Every reflection of the experiment to `d_min` (Angstrom; default: the resolution at
        the detector's outermost corner) over the whole scan; see `full_scan.predict_all`."""
        return predict_all(experiment, d_min)


def _frame(state: ExperimentState) -> dict:
    """Everything that depends only on the models, computed once per call."""
    s0 = _component_major(state.s0, 1)
    U, B, S, d = (_component_major(m, 2) for m in (state.U, state.B, state.S, state.d))
    F = np.asarray(state.F, dtype=float)
    s0_datum = _mv(_mT(S), s0)
    M = datum_basis(unit(state.axis), s0_datum)
    MT_F = _mm(_mT(M), F)
    return {
        "s0": s0,
        "s0_m": _mv(_mT(M), s0_datum),  # the beam in the basis M: (0, s0_m2, s0_m3)
        "Q": _mm(_mm(MT_F, U), B),  # h -> relp at phi = 0 in the basis M
        "M": M,
        "MT_F": MT_F,
        "U": U,
        "B": B,
        "SM": _mm(S, M),
        "D": _inverse(d),
    }


def _group(group: StateDerivative, frame: dict) -> tuple:
    """(kind, G, k): the derivative values in the form `_jacobian_t` contracts with.

    When M, U and B are all static the crystal derivatives are folded to the relp change at
    phi = 0 in the basis M, M^T F dU B or M^T F U dB, so U and B share one per-reflection factor;
    otherwise the values are kept and the per-reflection factors are applied in `_jacobian_t`."""
    if group.kind not in _STATE_NDIM:
        raise ValueError(f"RotationPredictor cannot differentiate state kind {group.kind!r}")
    static_ndim = _STATE_NDIM[group.kind]
    values = np.asarray(group.values, dtype=float)
    k = values.shape[0] if values.ndim == static_ndim else values.shape[1]
    G = _component_major(values, static_ndim)
    if group.kind == "crystal.U" and _crystal_frame_static(frame):
        G = _sandwich(frame["MT_F"], G, frame["B"])
    elif group.kind == "crystal.B" and _crystal_frame_static(frame):
        G = _sandwich(frame["MT_F"] @ frame["U"], G, np.eye(3))
    return group.kind, G, k


def _sandwich(L: np.ndarray, G: np.ndarray, R: np.ndarray) -> np.ndarray:
    """L G[k] R for static L, R and matrices G (k, 3, 3) or per reflection (k, 3, 3, n)."""
    if G.ndim == 3:
        return L @ G @ R
    LG = (L @ G.reshape(G.shape[0], 3, -1)).reshape(G.shape)
    # per-reflection matrices times a static one on the right: R^T acts on every row
    return np.matmul(R.T, LG)


def _crystal_frame_static(frame: dict) -> bool:
    return frame["MT_F"].ndim == 2 and frame["U"].ndim == 2 and frame["B"].ndim == 2


def _predict_chunk(frame, h, sign, phi_obs, groups, xyz, s1_out, valid, jacobian_t) -> None:
    """Predict one chunk of reflections (h: Miller indices (3, n)) into the output slices
    (MATH.md 2.1-2.3); jacobian_t is the chunk's (3, K, n) slice."""
    s0_m = frame["s0_m"]
    p_m = _mv(frame["Q"], h)
    q, phi, ok = rotation_solutions(p_m, s0_m, sign)
    r = _mv(frame["SM"], q)
    s1 = _bc(frame["s0"]) + r
    v = _mv(frame["D"], s1)
    inv_vz = 1.0 / v[2]
    X = v[0] * inv_vz
    Y = v[1] * inv_vz
    delta = -q[0] * s0_m[2]
    np.greater(v[2], 0.0, out=valid)
    valid &= ok
    valid &= np.abs(delta) > MIN_ABS_DELTA
    if phi_obs is not None:
        # same turn as the observation: phi_obs + (phi - phi_obs) wrapped to [-pi, pi)
        turn = phi - phi_obs
        turn -= _TWO_PI * np.floor(turn / _TWO_PI + 0.5)
        phi = phi_obs + turn
    xyz[:, 0] = X
    xyz[:, 1] = Y
    xyz[:, 2] = phi
    s1_out[...] = s1.T
    if jacobian_t is not None:
        geometry = dict(h=h, p_m=p_m, q=q, r=r, s1=s1, v=v, inv_vz=inv_vz, X=X, Y=Y, delta=delta)
        _jacobian_t(groups, jacobian_t, frame, **geometry)


def _jacobian_t(groups, jac, frame, h, p_m, q, r, s1, v, inv_vz, X, Y, delta) -> None:
    """d(X, Y, phi)/dp into jac (3, K, n), MATH.md 3.

    With (aX, aY) = d(X, Y)/d s1 = ([D]_x - X [D]_z, [D]_y - Y [D]_z) / v_z, A3 = [aX; aY; 0]
    and c = (aX.(e x r), aY.(e x r), 1) / Delta, a change dr of r at fixed phi moves (X, Y, phi)
    by Jr dr with Jr = A3 - c s1^T, and a change ds0 by Jb ds0 with Jb = A3 - c r^T (both
    include the phi shift that keeps s1 on the sphere).  Per state kind:
      beam      Jb ds0
      crystal   Jr S R(phi) F dU B h  and  Jr S R(phi) F U dB h,  with S R(phi) = S M Rot_M(phi) M^T
      S         Jr dS R(phi) F U B h = Jr dS (M q)
      detector  -A3 dd v (phi unaffected)
    Where a per-reflection matrix W meets a state derivative G and a vector y, the contraction
    goes through Z[i, (a, j)] = W[i, a] y[j]: one (k x 9) @ (9 x n) product per row i.
    """
    M, SM, D = frame["M"], frame["SM"], frame["D"]
    n = h.shape[1]
    Dz = _bc(D[2])
    A3 = np.empty((3, 3, n))
    np.multiply(_bc(D[0]) - X * Dz, inv_vz, out=A3[0])
    np.multiply(_bc(D[1]) - Y * Dz, inv_vz, out=A3[1])
    A3[2] = 0.0
    # e x r has the components (q3, 0, -q1) in the basis M
    e_cross_r = _bc(SM[:, 0]) * q[2] - _bc(SM[:, 2]) * q[0]
    c = np.empty((3, n))
    c[0] = np.einsum("an,an->n", A3[0], e_cross_r)
    c[1] = np.einsum("an,an->n", A3[1], e_cross_r)
    c[2] = 1.0
    c /= delta

    cache = {}

    def Jr():
        if "Jr" not in cache:
            cache["Jr"] = A3 - c[:, None, :] * s1[None, :, :]
        return cache["Jr"]

    def W_rotated():
        """Jr S M Rot_M(phi), with Jr S M = A3 S M - c s1_m^T (s1_m = s1 in the basis M).
        Rot_M only mixes the m1 and m3 columns, and R(phi) turns p_m into q,
        (q1, q3) = (p1 cos + p3 sin, p3 cos - p1 sin), which gives cos and sin."""
        if "W" not in cache:
            W = _mm(A3, SM)
            W -= c[:, None, :] * (_bc(frame["s0_m"]) + q)[None, :, :]
            rho2 = p_m[0] * p_m[0] + p_m[2] * p_m[2]
            cos = (q[0] * p_m[0] + q[2] * p_m[2]) / rho2
            sin = (q[0] * p_m[2] - q[2] * p_m[0]) / rho2
            W0 = W[:, 0].copy()
            W[:, 0] *= cos
            W[:, 0] -= W[:, 2] * sin
            W[:, 2] *= cos
            W[:, 2] += W0 * sin
            cache["W"] = W
        return cache["W"]

    def Z_crystal(kind, G):
        if _crystal_frame_static(frame):
            # folded in _group: G = M^T F dU B or M^T F U dB, shared per-reflection factor
            if "folded" not in cache:
                cache["folded"] = _outer(W_rotated(), h)
            return cache["folded"]
        if kind not in cache:
            W = _mm(W_rotated(), frame["MT_F"])
            cache[kind] = _outer(W, _mv(frame["B"], h)) if kind == "crystal.U" else _outer(_mm(W, frame["U"]), h)
        return cache[kind]

    col = 0
    for kind, G, k in groups:
        out = jac[:, col : col + k]
        if kind == "beam.s0":
            # Jb ds0 = A3 ds0 - c (r . ds0)
            r_ds0 = _dot_rows(G, r)
            for i in range(2):
                _dot_rows(G, A3[i], out=out[i])
                out[i] -= c[i] * r_ds0
            np.multiply(r_ds0, -c[2], out=out[2])
        elif kind in ("crystal.U", "crystal.B"):
            _contract(Z_crystal(kind, G), G, out)
        elif kind == "goniometer.S":
            _contract(_outer(Jr(), _mv(M, q)), G, out)
        else:  # detector.d: phi does not move, and A3 has no phi row
            _contract(_outer(-A3[:2], v), G, out[:2])
            out[2] = 0.0
        col += k


def _dot_rows(G: np.ndarray, y: np.ndarray, out=None) -> np.ndarray:
    """(k, n): G[k] . y for vectors G (k, 3) or per reflection (k, 3, n), and y (3, n)."""
    if G.ndim == 2:
        return np.matmul(G, y, out=out)
    if out is None:
        return np.einsum("kan,an->kn", G, y)
    out[...] = np.einsum("kan,an->kn", G, y)
    return out


def _outer(W: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Z[i, 3a + j] = W[i, a] y[j] per reflection, (rows, 9, n): a state derivative dX enters
    row i of the Jacobian as W dX y = vec(dX) . Z[i]."""
    return (W[:, :, None, :] * y[None, None, :, :]).reshape(len(W), 9, -1)


def _contract(Z: np.ndarray, G: np.ndarray, out: np.ndarray) -> None:
    """out[i, k] = vec(G[k]) . Z[i] for matrices G (k, 3, 3) or per reflection (k, 3, 3, n)."""
    if G.ndim == 3:
        np.matmul(G.reshape(-1, 9), Z, out=out)
    else:
        out[...] = np.einsum("kxn,ixn->ikn", G.reshape(G.shape[0], 9, -1), Z)
