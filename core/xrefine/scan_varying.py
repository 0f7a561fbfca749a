"""Scan-varying refinement in the core: which parameterisations are smoothed, the frame at
which each reflection's models are composed, and the models written at the scan points.

The smoothing itself is a plugin (hook ``xrefine_smoothers``); the core only decides what to
wrap and collects the results (MATH.md §5).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .errors import InputError
from .models import ExperimentList, clear_scan_points
from .problem import Observations

__all__ = ["SLOT_OF_KIND", "composition_frames", "make_scan_varying", "write_scan_points", "wants_scan_varying"]

#: parameterisation slot of each state kind (the `<slot>.force_static` option names)
SLOT_OF_KIND = {
    "beam.s0": "beam",
    "crystal.U": "crystal.orientation",
    "crystal.B": "crystal.unit_cell",
    "detector.d": "detector",
    "goniometer.S": "goniometer",
}

_BLOCK_PAD_RAD = 1e-11  # so that the last block covers the scan end


def wants_scan_varying(experiments: ExperimentList, config) -> bool:
    """scan_varying=true, or auto with at least one rotation scan."""
    mode = config["scan_varying"]
    if mode == "false":
        return False
    has_scan = any(not e.is_still for e in experiments)
    if mode == "true" and not has_scan:
        raise InputError("scan_varying=true needs at least one rotation scan; these experiments are all stills")
    return has_scan


def composition_frames(obs: Observations, experiments: ExperimentList, mode: str, block_width_deg: float) -> np.ndarray:
    """The frame t at which each observation's scan-varying models are composed.

    mode 'image': the centre of the observation's image, floor(z_obs) + 1/2.  mode 'block':
    reflections are grouped in blocks of `block_width_deg` of observed phi starting at the
    scan start (as dials.refine groups them), and every reflection of a block uses the frame of
    the block's centre.  dials.refine floors these frames to the image boundary before the
    block centre, which evaluates the models about half an image (image mode) or up to a whole
    image (block mode) before the reflections were recorded, a bias in the refined drift;
    xrefine composes at the centre itself (docs/design-decisions.md).  t is clipped to the
    scan's array range."""
    frames = np.full(len(obs), np.nan)
    for e, expt in enumerate(experiments):
        sel = obs.experiment == e
        if expt.is_still or not sel.any():
            continue
        phi = obs.xyz_obs[sel, 2]
        scan = expt.scan
        if mode == "image":
            t = np.floor(scan.frame_from_angle(phi)) + 0.5
        else:
            start, w = scan.oscillation_range_rad[0], math.radians(block_width_deg)
            sign = 1.0 if scan.oscillation[1] >= 0 else -1.0
            b = np.floor(sign * (phi - start) / (w + _BLOCK_PAD_RAD))
            t = scan.frame_from_angle(start + sign * (b + 0.5) * (w + _BLOCK_PAD_RAD))
        lo, hi = scan.array_range
        frames[sel] = np.clip(t, lo, hi)
    return frames


def make_scan_varying(params: list, experiments: ExperimentList, config, obs: Observations) -> list:
    """Wrap the parameterisations that should vary along their scan (per `<slot>.force_static`)
    with the configured smoother; others are returned unchanged.  `obs` (with frames and the
    active set) tells the smoother where the data are."""
    from .plugins import registrations

    smoothers = registrations("xrefine_smoothers")
    name = config["smoother"]
    if name not in smoothers:
        raise InputError(f"smoother={name!r} is not installed; choose one of: {', '.join(sorted(smoothers)) or '(none)'}")
    factory = smoothers[name]
    out = []
    for p in params:
        slot = SLOT_OF_KIND[p.kind]
        scans = [e for e in p.experiment_ids if not experiments[e].is_still]
        if config[f"{slot}.force_static"] or not scans or p.num_free == 0:
            out.append(p)
            continue
        if len({id(experiments[e].scan) for e in scans}) > 1:
            raise InputError(
                f"{p.name} ({slot}) is shared by experiments with different scans, so it cannot vary "
                f"along one scan; set {slot}.force_static=true"
            )
        used = obs.active & np.isin(obs.experiment, scans)
        out.append(factory(p, experiments[scans[0]], config, obs.frame[used]))
    return out


def _scan_points(expt) -> np.ndarray:
    lo, hi = expt.scan.array_range
    return np.arange(lo, hi + 1, dtype=float)


def write_scan_points(params: list, offsets: np.ndarray, cov: Optional[np.ndarray], experiments: ExperimentList) -> None:
    """Write the models at every scan point in DIALS's keys (crystal A_at_scan_points and
    B_covariance_at_scan_points, beam s0_at_scan_points, goniometer
    setting_rotation_at_scan_points); clear stale scan points of models refined statically."""
    by_model: dict = {}
    for i, p in enumerate(params):
        by_model.setdefault(id(p.model), []).append((i, p))
    for model_params in by_model.values():
        kinds = {p.kind: (i, p) for i, p in model_params}
        varying = [p for _, p in model_params if p.scan_varying]
        model = model_params[0][1].model
        if not varying:
            clear_scan_points(model)
            continue
        expt = next(experiments[e] for e in varying[0].experiment_ids if not experiments[e].is_still)
        t = _scan_points(expt)

        def states(kind, static_value):
            if kind not in kinds:
                return np.broadcast_to(static_value, (len(t),) + np.shape(static_value))
            i, p = kinds[kind]
            if p.scan_varying:
                p.prepare(t)
                return p.states_at(t)
            return np.broadcast_to(p.state(), (len(t),) + np.shape(p.state()))

        if "crystal.U" in kinds or "crystal.B" in kinds:
            U = states("crystal.U", model.U)
            B = states("crystal.B", model.B)
            model.A_at_scan_points = U @ B
            model.extra.pop("B_covariance_at_scan_points", None)
            if "crystal.B" in kinds and kinds["crystal.B"][1].scan_varying and cov is not None:
                i, p = kinds["crystal.B"]
                cols = np.arange(p.num_free)
                dB = p.derivatives_at(t, cols).reshape(len(t), len(cols), 9)
                V = cov[offsets[i]:offsets[i + 1], offsets[i]:offsets[i + 1]]
                dBt = np.transpose(dB, (0, 2, 1))
                covB = (dBt @ V) @ dB
                model.extra["B_covariance_at_scan_points"] = [c.ravel().tolist() for c in covB]
        if "beam.s0" in kinds and kinds["beam.s0"][1].scan_varying:
            model.s0_at_scan_points = states("beam.s0", model.s0).copy()
        if "goniometer.S" in kinds and kinds["goniometer.S"][1].scan_varying:
            model.setting_rotation_at_scan_points = states("goniometer.S", model.setting_rotation).copy()
