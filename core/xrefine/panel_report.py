"""Per-panel results: RMSDs by panel, and each panel's offset and tilt from its starting
position with esds (for multi-panel metrology)."""

from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["rmsd_by_panel", "panel_movements"]


def rmsd_by_panel(problem, ev) -> list:
    """dicts: experiment, detector (its name in parameter names), panel, n_reflections,
    rmsd_x_px, rmsd_y_px, rmsd_z_images (used rows)."""
    o = problem.obs
    out = []
    used = ev.used
    detector_number = {id(d): n for n, d in enumerate(problem.experiments.unique("detector"), start=1)}
    key = o.experiment * (int(o.panel.max(initial=0)) + 1) + o.panel
    for k in np.unique(key[used]):
        sel = used & (key == k)
        e, p = int(o.experiment[sel][0]), int(o.panel[sel][0])
        expt = problem.experiments[e]
        pix = expt.detector[p].pixel_size
        r = ev.xyz_calc[sel] - o.xyz_obs[sel]
        rms = np.sqrt(np.mean(r * r, axis=0))
        out.append({
            "experiment": e, "detector": f"Detector{detector_number[id(expt.detector)]}", "panel": p,
            "n_reflections": int(sel.sum()),
            "rmsd_x_px": float(rms[0] / pix[0]), "rmsd_y_px": float(rms[1] / pix[1]),
            "rmsd_z_images": float(rms[2] / abs(expt.scan.oscillation_rad[1])) if not expt.is_still else None,
        })
    return out


def panel_movements(problem, initial_states: dict, cov: Optional[np.ndarray]) -> list:
    """For every panel moved by a detector parameterisation: the offset of its centre from the
    start (um, along the starting fast, slow and normal axes) and its tilt (mrad, rotation about
    those axes), each with an esd propagated from the parameter covariance.  The centre is used
    because module calibrations are offsets and tilts about it; the corner's offset would mix in
    the tilt times half the module size."""
    out = []
    for i, p in enumerate(problem.parameterisations):
        if p.kind != "detector.d" or p.num_free == 0 or p.scan_varying:
            continue
        d0 = initial_states.get(id(p))
        if d0 is None:
            continue
        d = p.state()
        dd = p.state_derivatives()  # (k, n_panels, 3, 3)
        a, b = problem.offsets[i], problem.offsets[i + 1]
        V = cov[a:b, a:b] if cov is not None else None
        detector = p.model
        for panel in range(d.shape[0]):
            half_w, half_h = (0.5 * v for v in detector[panel].size_mm)
            f0, s0, o0 = d0[panel, :, 0], d0[panel, :, 1], d0[panel, :, 2]
            o0 = o0 + half_w * f0 + half_h * s0
            n0 = np.cross(f0, s0)
            n0 /= np.linalg.norm(n0)
            basis = np.array([f0, s0, n0])  # rows
            f, s, o = d[panel, :, 0], d[panel, :, 1], d[panel, :, 2]
            o = o + half_w * f + half_h * s
            n = np.cross(f, s)
            n /= np.linalg.norm(n)
            offset_um = 1000.0 * basis @ (o - o0)
            tilt = 0.5 * (np.cross(f0, f) + np.cross(s0, s) + np.cross(n0, n))
            tilt_mrad = 1000.0 * basis @ tilt
            entry = {"detector": p.name, "panel": panel, "offset_um": offset_um.tolist(), "tilt_mrad": tilt_mrad.tolist(),
                     "offset_esd_um": None, "tilt_esd_mrad": None, "offset_cov_um2": None, "tilt_cov_mrad2": None}
            cols = p.panel_columns(panel)
            if V is not None and len(cols):
                df = dd[cols, panel, :, 0]
                ds = dd[cols, panel, :, 1]
                do = dd[cols, panel, :, 2] + half_w * df + half_h * ds
                dn = np.cross(df, s) + np.cross(f, ds)
                g_off = 1000.0 * do @ basis.T  # (k, 3)
                g_tilt = 1000.0 * 0.5 * (np.cross(f0, df) + np.cross(s0, ds) + np.cross(n0, dn)) @ basis.T
                Vp = V[np.ix_(cols, cols)]
                c_off = g_off.T @ Vp @ g_off
                c_tilt = g_tilt.T @ Vp @ g_tilt
                entry["offset_esd_um"] = np.sqrt(np.maximum(np.diag(c_off), 0)).tolist()
                entry["tilt_esd_mrad"] = np.sqrt(np.maximum(np.diag(c_tilt), 0)).tolist()
                # the full 3 x 3 covariances: a module's fast offset and its offset along the
                # normal are strongly correlated off-centre, so a joint test needs them
                entry["offset_cov_um2"] = (0.5 * (c_off + c_off.T)).tolist()
                entry["tilt_cov_mrad2"] = (0.5 * (c_tilt + c_tilt.T)).tolist()
            out.append(entry)
    return out
