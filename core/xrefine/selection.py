"""Which reflections refinement uses (MATH.md §8.2), and their weights.

Checks the table against the experiments first: a reflection whose `id` has no experiment, or
whose identifier disagrees with the experiment's, a negative or non-finite variance, or a
reflection whose three variances are all zero is the user's error.  A single zero variance gives
that coordinate zero weight, as in dials.refine.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError
from .geometry import unit
from .models import ExperimentList
from .problem import Observations
from .reflections import Flags, ReflectionTable

__all__ = ["observed_s1", "entering_flags", "select_observations", "REQUIRED_COLUMNS"]

REQUIRED_COLUMNS = ("miller_index", "id", "panel", "xyzobs.mm.value", "xyzobs.mm.variance")


def observed_s1(experiments: ExperimentList, exp_ids, panels, xy_mm) -> np.ndarray:
    """Diffracted-beam vectors through the observed centroids (1/Angstrom), one matrix product
    per (experiment, panel) group."""
    s1 = np.empty((len(exp_ids), 3))
    key = exp_ids.astype(np.int64) * (int(panels.max(initial=0)) + 1) + panels.astype(np.int64)
    for k in np.unique(key):
        sel = key == k
        e, p = int(exp_ids[sel][0]), int(panels[sel][0])
        expt = experiments[e]
        d = expt.detector[p].d
        lab = np.column_stack([xy_mm[sel], np.ones(int(sel.sum()))]) @ d.T
        s1[sel] = unit(lab) / expt.beam.wavelength
    return s1


def entering_flags(experiments: ExperimentList, exp_ids, s1) -> np.ndarray:
    """entering iff s1 . (s0 x e) < 0 with e the laboratory rotation axis."""
    out = np.zeros(len(exp_ids), dtype=bool)
    for e in np.unique(exp_ids):
        expt = experiments[int(e)]
        if expt.goniometer is None:
            continue
        sel = exp_ids == e
        n = np.cross(expt.beam.s0, expt.goniometer.rotation_axis_lab)
        out[sel] = s1[sel] @ n < 0.0
    return out


def check_table(experiments: ExperimentList, table: ReflectionTable, source: str) -> None:
    """Errors for a table that cannot be refined against these experiments."""
    for col in REQUIRED_COLUMNS:
        if col not in table:
            raise InputError(f"{source}: the reflection table has no {col!r} column; refine indexed reflections (dials.index output)")
    ids = np.asarray(table["id"])
    bad = (ids < 0) | (ids >= len(experiments))
    indexed = ids >= 0
    if (bad & indexed).any():
        i = int(np.flatnonzero(bad & indexed)[0])
        raise InputError(
            f"{source}: reflection row {i} has id {int(ids[i])} but the experiment list has "
            f"{len(experiments)} experiment(s); pass the experiment list these reflections were indexed against"
        )
    for k, ident in table.identifiers.items():
        if 0 <= int(k) < len(experiments) and experiments[int(k)].identifier and ident != experiments[int(k)].identifier:
            raise InputError(
                f"{source}: experiment id {k} has identifier {ident!r} but experiment {k} of the "
                f"experiment list is {experiments[int(k)].identifier!r}; the files do not belong together"
            )
        if not 0 <= int(k) < len(experiments):
            raise InputError(f"{source}: identifier map names experiment id {k}, which the experiment list does not have")
    panels = np.asarray(table["panel"]).astype(np.int64)
    for e in np.unique(ids[indexed]):
        n_panels = len(experiments[int(e)].detector)
        sel = (ids == e) & (panels >= n_panels)
        if sel.any():
            raise InputError(f"{source}: {int(sel.sum())} reflections of experiment {int(e)} are on panel {int(panels[sel][0])}, but its detector has {n_panels} panels")


def select_observations(experiments: ExperimentList, table: ReflectionTable, config, source: str = "reflections") -> tuple:
    """(Observations, info dict) for the reflections refinement may use.  info["excluded_rows"]
    are the table rows cut for being close to the spindle or outside the scan (DIALS flags them
    excluded_for_refinement)."""
    check_table(experiments, table, source)
    n = table.nrows
    ids = np.asarray(table["id"]).astype(np.int64)
    miller = np.asarray(table["miller_index"])
    panels = np.asarray(table["panel"]).astype(np.int64)
    xyz = np.asarray(table["xyzobs.mm.value"], dtype=float)
    var = np.asarray(table["xyzobs.mm.variance"], dtype=float)
    info = {"n_table": n}

    keep = ids >= 0
    if "flags" in table:
        keep &= table.get_flags(Flags.indexed)
        keep &= ~table.get_flags(Flags.excluded_for_refinement | Flags.not_suitable_for_refinement | Flags.overloaded)
    keep &= np.any(miller != 0, axis=1)
    info["n_indexed"] = int(keep.sum())
    if not keep.any():
        raise InputError(f"{source}: no indexed reflections to refine (need the 'indexed' flag and a non-zero Miller index)")

    bad_var = keep & ~np.all(np.isfinite(var) & (var >= 0), axis=1)
    if bad_var.any():
        i = int(np.flatnonzero(bad_var)[0])
        raise InputError(
            f"{source}: {int(bad_var.sum())} indexed reflections have negative or non-finite "
            f"xyzobs.mm.variance (first: row {i}, {var[i].tolist()}); fix the centroid variances or "
            f"flag those reflections excluded_for_refinement"
        )

    s1 = np.full((n, 3), np.nan)
    s1[keep] = observed_s1(experiments, ids[keep], panels[keep], xyz[keep, :2])
    if "entering" in table:
        entering = np.asarray(table["entering"], dtype=bool)
    else:
        entering = np.zeros(n, dtype=bool)
        entering[keep] = entering_flags(experiments, ids[keep], s1[keep])

    # rotation-specific cuts, per experiment
    n_spindle = n_scan = 0
    excluded = []
    for e, expt in enumerate(experiments):
        sel = keep & (ids == e)
        if not sel.any() or expt.is_still:
            continue
        axis = expt.goniometer.rotation_axis_lab
        close = np.abs(np.cross(s1[sel], expt.beam.s0) @ axis) <= config["close_to_spindle_cutoff"]
        lo, hi = expt.scan.oscillation_range_rad
        margin = math.radians(config["scan_margin"])
        lo_m, hi_m = (lo, hi) if hi >= lo else (hi, lo)
        out_scan = (xyz[sel, 2] < lo_m + margin) | (xyz[sel, 2] > hi_m - margin)
        idx = np.flatnonzero(sel)
        n_spindle += int(close.sum())
        n_scan += int((out_scan & ~close).sum())
        keep[idx[close | out_scan]] = False
        excluded.append(idx[close | out_scan])
    info["n_close_to_spindle"] = n_spindle
    info["n_outside_scan"] = n_scan

    # as dials.refine: a zero variance gives that coordinate zero weight, but a reflection with
    # all three zero would carry no weight at all, which is taken as broken input
    all_zero = keep & np.all(var == 0, axis=1)
    if all_zero.any():
        i = int(np.flatnonzero(all_zero)[0])
        raise InputError(
            f"{source}: {int(all_zero.sum())} indexed reflections have xyzobs.mm.variance zero in X, Y "
            f"and phi (first: row {i}); weights are 1/variance, so fix the centroid variances or flag "
            f"those reflections excluded_for_refinement"
        )
    keep = _subsample(experiments, ids, keep, config)
    info["n_selected"] = int(keep.sum())
    if not keep.any():
        raise InputError(f"{source}: no reflections left after selection (close-to-spindle and scan cuts)")

    info["excluded_rows"] = np.concatenate(excluded) if excluded else np.zeros(0, dtype=np.int64)
    rows = np.flatnonzero(keep)
    v = var[rows]
    weights = np.divide(1.0, v, out=np.zeros_like(v), where=v > 0)
    obs = Observations.build(rows, ids[rows], panels[rows], miller[rows], entering[rows], xyz[rows], weights)
    return obs, info


def _subsample(experiments, ids, keep, config) -> np.ndarray:
    """DIALS's working subset: all reflections unless a scan exceeds one turn (or a size is
    asked for); never below minimum_sample_size; capped by maximum_sample_size."""
    rng = np.random.default_rng(config["random_seed"])
    per_degree = config["reflections_per_degree"]
    min_n, max_n = config["minimum_sample_size"], config["maximum_sample_size"]
    keep = keep.copy()
    for e, expt in enumerate(experiments):
        idx = np.flatnonzero(keep & (ids == e))
        if len(idx) == 0:
            continue
        target = None
        if expt.scan is not None and not expt.is_still:
            width = abs(expt.scan.oscillation[1] * expt.scan.num_images)
            if per_degree is not None:
                target = int(per_degree * max(round(width), 1))
            elif width > 360.0:
                turns = width / 360.0
                target = max(int(math.ceil(len(idx) / turns)), int(100 * width))
        if max_n is not None:
            target = min(target, max_n) if target is not None else max_n
        if target is None:
            continue
        target = max(target, min_n)
        if target < len(idx):
            drop = rng.choice(idx, size=len(idx) - target, replace=False)
            keep[drop] = False
    return keep
