"""The rotation-method predictor: calculated (X, Y, phi) of observed reflections and their
derivatives with respect to every state kind (MATH.md 2.1-2.3 and 3)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from xrefine.geometry import unit, wrap_angle
from xrefine.models import Experiment
from xrefine.predictor import ExperimentState, PredictionBlock, Predictor, StateDerivative

from .ewald import datum_basis, rotation_solutions
from .full_scan import predict_all

__all__ = ["RotationPredictor", "MIN_ABS_DELTA"]

#: |Delta| = |(e x r) . s0| (1/Angstrom^2) at or below which a prediction is rejected: d phi / dp
#: is proportional to 1 / Delta, so such rows would swamp the normal equations.
MIN_ABS_DELTA = 1e-10


def _mT(A: np.ndarray) -> np.ndarray:
    return np.swapaxes(A, -1, -2)


def _matvec(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A v for A (3, 3) or (n, 3, 3) and v (3,) or (n, 3); one BLAS product when A is static."""
    if A.ndim == 2:
        return v @ A.T
    if v.ndim == 1:
        return A @ v
    return np.einsum("nij,nj->ni", A, v)


def _contract(Z: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Jacobian block (n, 3, k): sum_x Z[n, i, x] G[(n,) k, x] with Z (n, 3, 9) and G
    (k, 3, 3) or (n, k, 3, 3) flattened over its last two axes."""
    n = Z.shape[0]
    if G.ndim == 3:
        k = G.shape[0]
        return (Z.reshape(3 * n, 9) @ G.reshape(k, 9).T).reshape(n, 3, k)
    return np.einsum("nix,nkx->nik", Z, G.reshape(n, -1, 9))


def _outer_rows(W: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Z[n, i, 3a + j] = W[n, i, a] y[n, j]: a state derivative dX enters row i of the Jacobian
    as W dX y, i.e. as Z . vec(dX), so each block is then one matrix product."""
    return (W[:, :, :, None] * y[:, None, None, :]).reshape(len(W), 3, 9)


def _num_columns(group: StateDerivative) -> int:
    """k of a StateDerivative, with or without the per-reflection axis."""
    static_ndim = 2 if group.kind == "beam.s0" else 3
    shape = np.shape(group.values)
    return shape[0] if len(shape) == static_ndim else shape[1]


def _expand(state: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A per-reflection state (n, 3, 3) gets an axis so it broadcasts against (k, 3, 3) or
    (n, k, 3, 3) derivative values."""
    return state[:, None] if state.ndim == 3 else state


class RotationPredictor(Predictor):
    """Predictions for rotation scans: X, Y (mm on the reflection's panel) and phi (rad).

    `predict` re-predicts observed reflections, each for its own Miller index and entering flag
    (entering iff s1 . (s0 x e) < 0, e = S e_d), on the same turn as its observed phi.  States
    may be static or carry a leading per-reflection axis (scan-varying models).  Rows with no
    Ewald solution, a ray that does not reach the panel plane (v_z <= 0) or
    |Delta| <= MIN_ABS_DELTA are invalid and hold NaN.

    Derivatives are supported for ``beam.s0``, ``crystal.U``, ``crystal.B``, ``goniometer.S``
    and ``detector.d`` (of the batch's panel).
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
        h = np.asarray(miller_index, dtype=float).reshape(-1, 3)
        n = len(h)
        s0 = np.asarray(state.s0, dtype=float)
        U, B, S, d, F = (np.asarray(m, dtype=float) for m in (state.U, state.B, state.S, state.d, state.F))
        axis = unit(state.axis)

        with np.errstate(invalid="ignore", divide="ignore"):
            M = datum_basis(axis, _matvec(_mT(S), s0))
            p_m = _matvec(_mT(M) @ F @ U @ B, h)
            s0_m = _matvec(_mT(M), _matvec(_mT(S), s0))
            sign = np.where(np.asarray(entering, dtype=bool), 1.0, -1.0)
            q, phi, ok = rotation_solutions(p_m, s0_m, sign)
            SM = S @ M
            r = _matvec(SM, q)
            s1 = s0 + r
            D = np.linalg.inv(d)
            v = _matvec(D, s1)
            X = v[:, 0] / v[:, 2]
            Y = v[:, 1] / v[:, 2]
            delta = -q[:, 0] * s0_m[..., 2]
            valid = ok & (v[:, 2] > 0.0) & (np.abs(delta) > MIN_ABS_DELTA)
            if phi_obs is not None:
                phi_obs = np.asarray(phi_obs, dtype=float)
                phi = phi_obs + wrap_angle(phi - np.mod(phi_obs, 2.0 * np.pi))
            xyz = np.column_stack([X, Y, phi])

            jacobian = None
            if derivatives:
                jacobian = self._jacobian(derivatives, h, F, U, B, S, D, M, SM, q, phi, r, s1, v, X, Y, delta)
                jacobian[~valid] = np.nan

        xyz[~valid] = np.nan
        s1[~valid] = np.nan
        return PredictionBlock(xyz=xyz, s1=s1, valid=valid, jacobian=jacobian)

    @staticmethod
    def _jacobian(derivatives, h, F, U, B, S, D, M, SM, q, phi, r, s1, v, X, Y, delta) -> np.ndarray:
        """d(X, Y, phi)/dp (n, 3, K), MATH.md 3.

        Each state kind enters as jac[n, :, k] = W_n dState_k y_n with a per-reflection 3x3 W
        and 3-vector y, so a block is one (3n x 9) @ (9 x k) product when the state is static:
          beam      W = Jb,              ds0 directly (no y)
          crystal   W = Jr S R(phi),     y = h,   dState = F dU B  or  F U dB
          S         W = Jr,              y = R(phi) F U B h,        dState = dS
          detector  W = -[aX; aY; 0],    y = v,                     dState = dd
        where (aX, aY) = d(X, Y)/d s1 and Jr, Jb map a change of r at fixed phi, or of s0, to
        (X, Y, phi) including the phi shift that keeps s1 on the sphere.
        """
        n = len(h)
        Dx, Dy, Dz = D[..., 0, :], D[..., 1, :], D[..., 2, :]
        inv_vz = (1.0 / v[:, 2])[:, None]
        A3 = np.zeros((n, 3, 3))
        A3[:, 0] = (Dx - X[:, None] * Dz) * inv_vz
        A3[:, 1] = (Dy - Y[:, None] * Dz) * inv_vz
        # e x r in the basis M is (q3, 0, -q1)
        e_cross_r = q[:, 2:3] * SM[..., :, 0] - q[:, 0:1] * SM[..., :, 2]
        c = np.empty((n, 3))
        c[:, 0] = np.einsum("ni,ni->n", A3[:, 0], e_cross_r)
        c[:, 1] = np.einsum("ni,ni->n", A3[:, 1], e_cross_r)
        c[:, 2] = 1.0
        c /= delta[:, None]

        cache = {}

        def Jr():
            if "Jr" not in cache:
                cache["Jr"] = A3 - c[:, :, None] * s1[:, None, :]
            return cache["Jr"]

        def Z_crystal():
            if "crystal" not in cache:
                # W = Jr S R(phi) = (Jr S M) Rot_M(phi) M^T; Rot_M only mixes columns 0 and 2
                W = Jr() @ SM
                cs, sn = np.cos(phi)[:, None], np.sin(phi)[:, None]
                W0, W2 = W[:, :, 0].copy(), W[:, :, 2]
                W[:, :, 0] = W0 * cs - W2 * sn
                W[:, :, 2] = W0 * sn + W2 * cs
                cache["crystal"] = _outer_rows(W @ _mT(M), h)
            return cache["crystal"]

        K = sum(_num_columns(g) for g in derivatives)
        jac = np.empty((n, 3, K))
        col = 0
        for group in derivatives:
            values = np.asarray(group.values, dtype=float)
            k = _num_columns(group)
            if k == 0:
                continue
            if group.kind == "beam.s0":
                Jb = A3 - c[:, :, None] * r[:, None, :]
                if values.ndim == 2:
                    block = (Jb.reshape(3 * n, 3) @ values.T).reshape(n, 3, k)
                else:
                    block = np.einsum("nia,nka->nik", Jb, values)
            elif group.kind == "crystal.U":
                block = _contract(Z_crystal(), F @ values @ _expand(B, values))
            elif group.kind == "crystal.B":
                block = _contract(Z_crystal(), F @ _expand(U, values) @ values)
            elif group.kind == "goniometer.S":
                block = _contract(_outer_rows(Jr(), _matvec(M, q)), values)
            elif group.kind == "detector.d":
                block = _contract(_outer_rows(-A3, v), values)
            else:
                raise ValueError(f"RotationPredictor cannot differentiate state kind {group.kind!r}")
            jac[:, :, col : col + k] = block
            col += k
        return jac

    def predict_all(self, experiment: Experiment, d_min: Optional[float] = None):
        """Every reflection of the experiment to `d_min` (Angstrom; default: the resolution at
        the detector's outermost corner) over the whole scan; see `full_scan.predict_all`."""
        return predict_all(experiment, d_min)
