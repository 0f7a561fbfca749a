"""Full-scan prediction: every reflection to a resolution limit that diffracts during the scan
and reaches a panel (MATH.md 2.5, done here by direct enumeration instead of the Reeke
generator; scan-varying models in `scan_varying_prediction`).  Not used inside refinement,
which re-predicts observed reflections only."""

from __future__ import annotations

from typing import Optional

import numpy as np

from xrefine.geometry import unit
from xrefine.models import Experiment
from xrefine.reflections import Flags, ReflectionTable

from .ewald import datum_basis, rotation_solutions
from .symmetry import lattice_absences, space_group_ops

__all__ = ["predict_all", "detector_d_min", "miller_indices_to", "rays_to_table"]

# Candidate Miller indices are generated a few planes at a time to bound memory for big cells.
_CANDIDATES_PER_CHUNK = 2_000_000


def detector_d_min(experiment: Experiment) -> float:
    """The highest resolution (smallest d, Angstrom) reached at any corner pixel of any panel
    (dxtbx's Detector.get_max_resolution)."""
    s0 = experiment.beam.s0
    wavelength = 1.0 / np.linalg.norm(s0)
    d_min = np.inf
    for panel in experiment.detector:
        corners = panel.corners_mm()
        lab = panel.origin + corners[:, :1] * panel.fast + corners[:, 1:] * panel.slow
        cos_2theta = np.clip(unit(lab) @ unit(s0), -1.0, 1.0)
        sin_theta = np.sqrt(0.5 * (1.0 - cos_2theta))
        d_min = min(d_min, float(np.min(wavelength / (2.0 * sin_theta))))
    return d_min


def miller_indices_to(A: np.ndarray, d_min: float) -> np.ndarray:
    """All non-zero Miller indices (m, 3) with |A h| <= 1 / d_min, A = UB (1/Angstrom).

    |h_i| cannot exceed |a_i| / d_min (a_i the direct axes, rows of inv(A)), which bounds the
    box searched."""
    real = np.linalg.inv(A)
    hmax = np.floor(np.linalg.norm(real, axis=1) / d_min).astype(int)
    k_grid, l_grid = np.meshgrid(np.arange(-hmax[1], hmax[1] + 1), np.arange(-hmax[2], hmax[2] + 1), indexing="ij")
    kl = np.column_stack([k_grid.ravel(), l_grid.ravel()])
    limit = 1.0 / d_min**2
    planes_per_chunk = max(1, _CANDIDATES_PER_CHUNK // len(kl))
    out = []
    for start in range(-hmax[0], hmax[0] + 1, planes_per_chunk):
        hs = np.arange(start, min(start + planes_per_chunk, hmax[0] + 1))
        hkl = np.column_stack([np.repeat(hs, len(kl)), np.tile(kl, (len(hs), 1))])
        r = hkl @ A.T
        keep = np.einsum("ij,ij->i", r, r) <= limit
        keep &= np.any(hkl != 0, axis=1)
        out.append(hkl[keep])
    return np.concatenate(out).astype(np.int32)


def predict_all(experiment: Experiment, d_min: Optional[float] = None) -> ReflectionTable:
    """Predict the whole scan of a rotation experiment.

    Every Miller index to `d_min` (Angstrom; default `detector_d_min`) that the lattice centring
    does not extinguish (as DIALS: screw-axis and glide absences are predicted), at both Ewald
    solutions and on every turn of the scan (scans longer than 360 degrees give the same
    reflection once per turn) with phi inside the
    scan's oscillation range, that hits a panel (the panel dxtbx would choose, see
    `rays_to_table`).

    If the crystal has `A_at_scan_points` or the beam `s0_at_scan_points` (one per scan point,
    num_images + 1), the scan is predicted image by image between the models at the image's two
    ends (with the goniometer's `setting_rotation_at_scan_points` too, if it has them), as DIALS's scan-varying
    predictor does: see `scan_varying_prediction.predict_all_scan_varying`.

    Returns a ReflectionTable sorted by frame with miller_index, id (0), panel, entering, s1
    (1/Angstrom), xyzcal.mm (X mm, Y mm, phi rad), xyzcal.px (pixels with the panel's parallax
    correction, frame z) and flags = predicted.
    """
    from .scan_varying_prediction import predict_all_scan_varying, scan_point_models

    if d_min is None:
        d_min = detector_d_min(experiment)
    models = scan_point_models(experiment)
    if models is not None:
        return predict_all_scan_varying(experiment, d_min, models)

    beam, gonio, scan, crystal = experiment.beam, experiment.goniometer, experiment.scan, experiment.crystal
    s0 = beam.s0
    S, F = gonio.setting_rotation, gonio.fixed_rotation
    A = crystal.A

    hkl = miller_indices_to(A, d_min)
    hkl = hkl[~lattice_absences(space_group_ops(crystal.space_group_hall_symbol), hkl)]

    s0_datum = S.T @ s0
    M = datum_basis(gonio.rotation_axis, s0_datum)
    p_m = (M.T @ F @ A) @ hkl.T
    s0_m = M.T @ s0_datum
    phi_lo, phi_hi = sorted(scan.oscillation_range_rad)
    turns = range(int(np.floor(phi_lo / (2 * np.pi))) - 1, int(np.ceil(phi_hi / (2 * np.pi))) + 1)

    index, entering, phi, q = [], [], [], []
    for sign in (1.0, -1.0):
        q_s, phi_s, ok = rotation_solutions(p_m, s0_m, sign)
        for t in turns:
            angle = phi_s + 2.0 * np.pi * t
            rows = np.flatnonzero(ok & (angle >= phi_lo) & (angle <= phi_hi))
            index.append(rows)
            entering.append(np.full(len(rows), sign > 0))
            phi.append(angle[rows])
            q.append(q_s[:, rows])
    index, entering, phi = (np.concatenate(a) for a in (index, entering, phi))
    q = np.concatenate(q, axis=1)
    s1 = s0 + (S @ M @ q).T
    return rays_to_table(experiment, hkl[index], entering, s1, phi)


def rays_to_table(
    experiment: Experiment, miller_index: np.ndarray, entering: np.ndarray, s1: np.ndarray, phi: np.ndarray
) -> ReflectionTable:
    """The predicted-reflection table of rays (s1 (n, 3) 1/Angstrom, phi (n,) rad) that hit a
    panel, as dxtbx's Detector.get_ray_intersection decides: among the panels whose bounds
    [0, valid_extent_mm) contain the intersection, the one with the largest w (the third
    component of D s1; the first such panel on a tie).  Rays that miss every panel are dropped.
    Rows are sorted by frame (stably)."""
    panel_of = np.full(len(s1), -1)
    xy_mm = np.full((len(s1), 2), np.nan)
    w_best = np.zeros(len(s1))
    for ip, panel in enumerate(experiment.detector):
        v = s1 @ panel.D.T
        with np.errstate(invalid="ignore", divide="ignore"):
            xy = v[:, :2] / v[:, 2:]
        w, h = panel.valid_extent_mm()
        hit = (v[:, 2] > w_best) & (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
        panel_of[hit] = ip
        xy_mm[hit] = xy[hit]
        w_best[hit] = v[hit, 2]

    scan = experiment.scan
    keep = np.flatnonzero(panel_of >= 0)
    z = scan.frame_from_angle(phi[keep])
    keep = keep[np.argsort(z, kind="stable")]
    z = np.sort(z, kind="stable")
    n = len(keep)
    xy_px = np.empty((n, 2))
    panel_of = panel_of[keep]
    for ip in np.unique(panel_of):
        rows = panel_of == ip
        xy_px[rows] = experiment.detector[int(ip)].mm_to_px(xy_mm[keep[rows]])

    table = ReflectionTable(n, {0: experiment.identifier} if experiment.identifier else None)
    table["miller_index"] = np.asarray(miller_index)[keep].astype(np.int32)
    table["id"] = np.zeros(n, dtype=np.int32)
    table["panel"] = panel_of.astype(np.uint64)
    table["entering"] = np.asarray(entering, dtype=bool)[keep]
    table["s1"] = s1[keep]
    table["xyzcal.mm"] = np.column_stack([xy_mm[keep], phi[keep]])
    table["xyzcal.px"] = np.column_stack([xy_px, z])
    table["flags"] = np.full(n, Flags.predicted, dtype=np.uint64)
    return table
