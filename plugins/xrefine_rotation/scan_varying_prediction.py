"""Full-scan prediction with models that vary across the scan (MATH.md 2.5), as DIALS's
ScanVaryingReflectionPredictor does it.

DIALS predicts image by image.  For image t (scan points t and t + 1 at its start and end) the
setting matrices at the two ends are

    M_t = S_t R(e_d, phi_t) F A_t,      M_t+1 = S_t+1 R(e_d, phi_t+1) F A_t+1,

with r1 = M_t h and r2 = M_t+1 h.  A reflection is on image t iff |s0 + r| - |s0| changes sign
between the ends (s0 of each end), and iff |r1| <= 1 / d_min (resolution at the image start).
The relp is taken to move along the chord r1 + alpha (r2 - r1); alpha in [0, 1] solves
|s0 + r1 + alpha dr| = |s0| (DIALS's root choice), s1 = s0 + r1 + alpha dr and
phi = phi_t + alpha dphi.  When the beam or the goniometer setting varies too, alpha is the
average alpha1 / (alpha1 + alpha2) of the crossings of the start and end spheres and s0 at the
crossing is interpolated (direction linearly, length the mean).  The entering flag is "starts
outside the sphere".

Instead of DIALS's per-image Reeke index generator, this module finds every sign change directly
and exactly, vectorised over Miller indices: with f_k(h) = |r_k|^2 + 2 s0_k . r_k (same sign as
|s0_k + r_k| - |s0_k|) at scan point k, and a static reference model (the models at the middle
scan point) whose f is a sinusoid in phi, f_k differs from the reference at phi_k by at most

    D(h) = a |q|^2 + b |q|,   q = A_ref h,

(a, b from the largest departure of any scan point's models from the reference).  A sign change
between scan points k and k + 1 therefore needs |f_ref| <= D somewhere in [phi_k, phi_k+1]: the
reference sinusoid gives those windows in closed form, and f is evaluated only at the scan points
around them.  The result is the same set of crossings as evaluating f at every scan point, for a
few dozen evaluations per index instead of one per scan point.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from xrefine.errors import InputError
from xrefine.geometry import rotation_matrices
from xrefine.models import Experiment
from xrefine.reflections import ReflectionTable

from .ewald import datum_basis
from .full_scan import miller_indices_to, rays_to_table
from .symmetry import lattice_absences, space_group_ops

__all__ = ["ScanPointModels", "scan_point_models", "predict_all_scan_varying", "scan_point_setting_matrices"]

#: Miller indices per chunk of the window search
_INDICES_PER_CHUNK = 20_000
#: scan-point evaluations per batch (bounds the temporaries: ~150 bytes each)
_EVALUATIONS_PER_BATCH = 2_000_000


class ScanPointModels(NamedTuple):
    """The models at the scan points t = 0..N (N images): A (N+1, 3, 3), s0 (N+1, 3), S (N+1, 3, 3),
    and whether the beam or the goniometer setting varies (DIALS's "varying models" path, which
    averages alpha over the two ends' Ewald spheres)."""

    A: np.ndarray
    s0: np.ndarray
    S: np.ndarray
    varying_beam_or_setting: bool


def scan_point_models(experiment: Experiment) -> Optional[ScanPointModels]:
    """The models at every scan point if the crystal or the beam has scan points, else None
    (static prediction).  Models without scan points contribute their static value; the
    goniometer's scan points are used only together with the crystal's or the beam's, because
    DIALS predicts statically when only the goniometer has them, and so does this.

    Raises InputError if a model's scan points are not one per image boundary (num_images + 1).
    (DIALS then silently predicts statically.)
    """
    crystal, beam, gonio, scan = experiment.crystal, experiment.beam, experiment.goniometer, experiment.scan
    if scan is None or gonio is None or experiment.is_still:
        return None
    A = getattr(crystal, "A_at_scan_points", None)
    s0 = getattr(beam, "s0_at_scan_points", None)
    S = getattr(gonio, "setting_rotation_at_scan_points", None)
    if A is None and s0 is None:
        return None
    n = scan.num_images + 1
    for name, value, shape in (("crystal A_at_scan_points", A, (3, 3)), ("beam s0_at_scan_points", s0, (3,)),
                               ("goniometer setting_rotation_at_scan_points", S, (3, 3))):
        if value is not None and np.shape(value) != (n,) + shape:
            raise InputError(
                f"experiment {experiment.identifier or '?'}: {name} has {len(value)} scan points but the scan has "
                f"{scan.num_images} images, so it needs {n} (one per image boundary); re-run scan-varying "
                f"refinement on this scan or remove the scan points to predict statically"
            )
    return ScanPointModels(
        A=np.asarray(A, dtype=float) if A is not None else np.broadcast_to(crystal.A, (n, 3, 3)).copy(),
        s0=np.asarray(s0, dtype=float) if s0 is not None else np.broadcast_to(beam.s0, (n, 3)).copy(),
        S=np.asarray(S, dtype=float) if S is not None else np.broadcast_to(gonio.setting_rotation, (n, 3, 3)).copy(),
        varying_beam_or_setting=s0 is not None or S is not None,
    )


def scan_point_setting_matrices(experiment: Experiment, models: ScanPointModels) -> tuple:
    """(phi (N+1,) rad, M (N+1, 3, 3)): the rotation angle at each scan point and the setting
    matrix M_t = S_t R(e_d, phi_t) F A_t there (r = M_t h in the laboratory frame)."""
    scan, gonio = experiment.scan, experiment.goniometer
    x0 = scan.array_range[0]
    phi = scan.angle_from_frame(x0 + np.arange(scan.num_images + 1, dtype=float))
    R = rotation_matrices(gonio.rotation_axis, phi)
    M = models.S @ R @ gonio.fixed_rotation @ models.A
    return phi, M


def predict_all_scan_varying(experiment: Experiment, d_min: float, models: ScanPointModels) -> ReflectionTable:
    """Every reflection to d_min predicted image by image with the models at the scan points (see
    the module docstring); the same columns as `full_scan.predict_all`, sorted by frame."""
    scan, crystal = experiment.scan, experiment.crystal
    N = scan.num_images
    phi_k, M = scan_point_setting_matrices(experiment, models)

    # f_k(h) = h^T G_k h + w_k . h: the quadratic and linear coefficients at every scan point
    G = np.einsum("kji,kjl->kil", models.A, models.A)
    w = 2.0 * np.einsum("kji,kj->ki", M, models.s0)
    coeffs = np.column_stack([G[:, 0, 0], G[:, 1, 1], G[:, 2, 2], 2 * G[:, 0, 1], 2 * G[:, 0, 2], 2 * G[:, 1, 2], w])

    ref = _Reference(experiment, models, phi_k, G, w)
    d_candidates = d_min / ref.max_stretch
    hkl = miller_indices_to(ref.A, d_candidates)
    hkl = hkl[~lattice_absences(space_group_ops(crystal.space_group_hall_symbol), hkl)]

    crossings = []
    for a in range(0, len(hkl), _INDICES_PER_CHUNK):
        chunk = hkl[a : a + _INDICES_PER_CHUNK]
        index, k = _sign_changes(chunk, coeffs, ref, phi_k, scan)
        crossings.append((index + a) * (N + 1) + k)
    key = np.unique(np.concatenate(crossings)) if crossings else np.zeros(0, dtype=np.int64)
    index, t = np.divmod(key, N + 1)
    h = hkl[index]
    hf = h.astype(float)

    r1 = np.einsum("nij,nj->ni", M[t], hf)
    r2 = np.einsum("nij,nj->ni", M[t + 1], hf)
    s0a, s0b = models.s0[t], models.s0[t + 1]
    starts_outside = np.linalg.norm(s0a + r1, axis=1) - np.linalg.norm(s0a, axis=1) >= 0.0
    ends_outside = np.linalg.norm(s0b + r2, axis=1) - np.linalg.norm(s0b, axis=1) >= 0.0
    keep = (starts_outside != ends_outside) & (_dot(r1, r1) <= 1.0 / d_min**2)

    dr = r2 - r1
    alpha1, ok = _alpha(_dot(dr, dr), 2.0 * _dot(s0a + r1, dr), _dot(r1, r1) + 2.0 * _dot(s0a, r1))
    if models.varying_beam_or_setting:
        alpha2, ok2 = _alpha(_dot(dr, dr), -2.0 * _dot(s0b + r2, dr), _dot(r2, r2) + 2.0 * _dot(s0b, r2))
        ok &= ok2
        with np.errstate(invalid="ignore", divide="ignore"):
            alpha = alpha1 / (alpha1 + alpha2)
        ka, kb = np.linalg.norm(s0a, axis=1), np.linalg.norm(s0b, axis=1)
        ua, ub = s0a / ka[:, None], s0b / kb[:, None]
        s0_x = (0.5 * (ka + kb))[:, None] * (ua + alpha[:, None] * (ub - ua))
    else:
        alpha = alpha1
        s0_x = s0a
    keep &= ok
    rows = np.flatnonzero(keep)
    alpha = alpha[rows]
    s1 = r1[rows] + alpha[:, None] * dr[rows] + s0_x[rows]
    start, width = scan.oscillation_rad
    phi = start + (t[rows] + alpha) * width
    return rays_to_table(experiment, h[rows], starts_outside[rows], s1, phi)


# ------------------------------------------------------------------------------------------
class _Reference:
    """The static reference model (the models at the middle scan point) and the bound on how far
    any scan point's f departs from the reference's."""

    def __init__(self, experiment: Experiment, models: ScanPointModels, phi_k, G, w):
        gonio = experiment.goniometer
        km = len(phi_k) // 2
        self.A = models.A[km]
        S, s0, F = models.S[km], models.s0[km], gonio.fixed_rotation
        A_inv = np.linalg.inv(self.A)
        # f_ref(phi; h) = |p|^2 + 2 s0' . R(phi) p with p = F A h, s0' = S^T s0; in the datum basis
        # (m1, m2 = e_d, m3) s0' = (0, s0m2, s0m3) and (R(phi) p)_3 = p3 cos(phi) - p1 sin(phi), so
        # f_ref = c + 2 s0m3 rho cos(phi + beta), c = |p|^2 + 2 s0m2 p2, rho cos(beta) = p3,
        # rho sin(beta) = p1.
        s0_datum = S.T @ s0
        basis = datum_basis(gonio.rotation_axis, s0_datum)
        self.P = basis.T @ F @ self.A  # h -> p in the datum basis
        s0_m = basis.T @ s0_datum
        self.s0m2, self.s0m3 = s0_m[1], s0_m[2]
        # departures: f_k(h) - f_ref(phi_k; h) = q^T A^-T dG_k A^-1 q + (A^-T dw_k) . q, q = A h
        Rk = rotation_matrices(gonio.rotation_axis, phi_k)
        M_ref = S @ Rk @ F @ self.A
        w_ref = 2.0 * np.einsum("kji,j->ki", M_ref, s0)
        dG = A_inv.T @ (G - self.A.T @ self.A) @ A_inv
        self.a = float(np.max(np.linalg.norm(dG, ord=2, axis=(1, 2))))
        self.b = float(np.max(np.linalg.norm((w - w_ref) @ A_inv, axis=1)))
        self.k_scale = float(np.max(np.linalg.norm(models.s0, axis=1)))
        # the largest |A_ref h| / |A_k h|: candidates must reach 1 / d_min at some scan point
        self.max_stretch = float(np.max(np.linalg.norm(self.A @ np.linalg.inv(models.A), ord=2, axis=(1, 2))))

    def bound(self, q: np.ndarray) -> np.ndarray:
        """D(h) for |A_ref h| = q, padded for rounding in f (values of order q^2 + 2 |s0| q)."""
        return self.a * q * q + self.b * q + 1e-9 * (q * q + 2.0 * self.k_scale * q) + 1e-12


def _sign_changes(hkl: np.ndarray, coeffs: np.ndarray, ref: _Reference, phi_k: np.ndarray, scan) -> tuple:
    """(row in hkl, scan point k) of every sign change of f between scan points k and k + 1."""
    N = len(phi_k) - 1
    hf = hkl.astype(float)
    p = hf @ ref.P.T
    q = np.linalg.norm(hf @ ref.A.T, axis=1)
    c = np.einsum("ij,ij->i", p, p) + 2.0 * ref.s0m2 * p[:, 1]
    amp = np.maximum(2.0 * ref.s0m3 * np.hypot(p[:, 0], p[:, 2]), 1e-300)
    beta = np.arctan2(p[:, 0], p[:, 2])
    D = ref.bound(q)
    u_lo, u_hi = (-c - D) / amp, (-c + D) / amp
    reach = (u_lo <= 1.0) & (u_hi >= -1.0)
    acos_lo, acos_hi = np.arccos(np.clip(u_lo, -1.0, 1.0)), np.arccos(np.clip(u_hi, -1.0, 1.0))
    # |f_ref| <= D on two arcs of phi (mod 2 pi), which touch when the window reaches cos = +-1
    arcs = [(-beta + acos_hi, -beta + acos_lo), (-beta - acos_lo, -beta - acos_hi)]

    start, width = scan.oscillation_rad
    period = 2.0 * np.pi / abs(width)
    seg_row, seg_lo, seg_hi = [], [], []
    for lo, hi in arcs:
        # in scan-point units; interval k = [k, k + 1] meets [x, y] iff ceil(x) - 1 <= k <= floor(y)
        x, y = np.sort(np.stack([(lo - start) / width, (hi - start) / width]), axis=0)
        n_lo = np.ceil((0.0 - y) / period)
        n_hi = np.floor((N - x) / period)
        rows = np.flatnonzero(reach)
        for n in range(int(n_lo[rows].min(initial=0)) - 1, int(n_hi[rows].max(initial=-1)) + 2):
            k_first = np.floor(x[rows] + n * period) - 1  # one point of margin each side for rounding
            k_last = np.floor(y[rows] + n * period) + 2
            k_first, k_last = np.maximum(k_first, 0), np.minimum(k_last, N)
            ok = k_last > k_first
            seg_row.append(rows[ok])
            seg_lo.append(k_first[ok].astype(np.int64))
            seg_hi.append(k_last[ok].astype(np.int64))
    seg_row, seg_lo, seg_hi = (np.concatenate(a) for a in (seg_row, seg_lo, seg_hi))

    features = np.column_stack([hf * hf, hf[:, 0] * hf[:, 1], hf[:, 0] * hf[:, 2], hf[:, 1] * hf[:, 2], hf])
    length = seg_hi - seg_lo + 1
    out_row, out_k = [], []
    # batches of whole segments, each batch holding at most ~_EVALUATIONS_PER_BATCH points
    ends = np.cumsum(length)
    s = 0
    while s < len(length):
        e = int(np.searchsorted(ends, (ends[s - 1] if s else 0) + _EVALUATIONS_PER_BATCH, side="right"))
        e = max(e, s + 1)
        L = length[s:e]
        total = int(L.sum())
        seg = np.repeat(np.arange(s, e), L)
        offsets = np.cumsum(L) - L
        k = seg_lo[seg] + (np.arange(total) - np.repeat(offsets, L))
        f = np.einsum("ij,ij->i", coeffs[k], features[seg_row[seg]])
        outside = f >= 0.0
        change = np.flatnonzero((outside[:-1] != outside[1:]) & (seg[:-1] == seg[1:]))
        out_row.append(seg_row[seg[change]])
        out_k.append(k[change])
        s = e
    if not out_row:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(out_row).astype(np.int64), np.concatenate(out_k).astype(np.int64)


def _alpha(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple:
    """DIALS's root of a alpha^2 + b alpha + c = 0 in [0, 1]: the roots in its order (q / a, then
    c / q, with q = -(b + sign(b) sqrt(disc)) / 2), the first that lies in [0, 1].
    Returns (alpha, found)."""
    disc = b * b - 4.0 * a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        sign = np.where(b >= 0.0, 1.0, -1.0)
        qq = -0.5 * (b + sign * np.sqrt(np.maximum(disc, 0.0)))
        two = disc > 0.0
        root0 = np.where(two, np.where(a != 0.0, qq / a, c / qq), -b / (2.0 * a))
        root1 = np.where(two, np.where((a != 0.0) & (qq != 0.0), c / qq, np.nan), root0)
    in0 = (root0 >= 0.0) & (root0 <= 1.0)
    in1 = (root1 >= 0.0) & (root1 <= 1.0)
    found = (disc >= 0.0) & (in0 | in1)
    return np.where(in0, root0, root1), found


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, y)
