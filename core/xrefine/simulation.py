"""Synthetic data sets with known truth: ``xrefine simulate PRESET -o DIR [seed=N]``.

A preset (hook ``xrefine_simulation_presets``) builds the true experiment list.  This module
predicts every reflection on the true models, keeps those safely inside a panel and the scan,
adds Gaussian noise of the recorded variances and 1 % gross outliers, and perturbs the truth
along the parameters the default configuration refines to give the starting models.
Everything is deterministic given the seed.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .errors import InputError
from .models import ExperimentList, clear_scan_points
from .reflections import Flags, ReflectionTable

__all__ = ["Truth", "simulate", "perturb", "observe", "drop_systematic_absences"]


@dataclass
class Truth:
    """What a preset returns.

    sigma_px / sigma_images: ranges (low, high) from which each reflection's centroid sigma is
    drawn; perturbation: sizes of the start-model perturbation in scaled units by parameter
    unit and state kind (see `perturb`)."""

    experiments: ExperimentList
    d_min: float
    sigma_px: tuple = (0.2, 0.3)
    sigma_images: tuple = (0.2, 0.3)
    outlier_fraction: float = 0.01
    outlier_px: float = 5.0
    outlier_images: float = 3.0
    #: what the experimenter believes before refinement, if not the truth itself (e.g. an ideal
    #: detector without the true module errors); the start is this, perturbed
    start_experiments: Optional[ExperimentList] = None
    perturbation: dict = field(default_factory=lambda: {
        "detector.d:mm": 1.0, "detector.d:mrad": 2.0, "beam.s0:mrad": 1.0,
        "crystal.U:mrad": 2.0, "crystal.B:relative": 0.01, "goniometer.S:mrad": 1.0,
    })
    extra: dict = field(default_factory=dict)


def perturb(experiments: ExperimentList, truth: Truth, rng: np.random.Generator, config=None) -> dict:
    """Move `experiments` in place along the parameters the default configuration refines: each
    free parameter by a size drawn uniformly from [0.5, 1.5] x the preset's size, random sign
    (metric elements of the cell: relative size).  Returns {parameter name: shift}."""
    from .config import build_config
    from .refine import build_parameterisations

    config = config or build_config()
    shifts = {}
    for p in build_parameterisations(experiments, config):
        values = p.get_free_values()
        for j, q in enumerate(p.free_parameters):
            unit = "relative" if p.kind == "crystal.B" else q.unit
            size = truth.perturbation.get(f"{p.kind}:{unit}", 0.0)
            delta = rng.choice((-1.0, 1.0)) * rng.uniform(0.5, 1.5) * size
            if unit == "relative":
                delta *= values[j]
            values[j] += delta
            shifts[f"{p.name}{q.name}"] = float(delta)
        p.set_free_values(values)
    return shifts


def observe(truth: Truth, predicted: ReflectionTable, rng: np.random.Generator, noise_scale: float = 1.0) -> tuple:
    """Noisy observations of the predicted reflections safely inside their panel (>= 1 px from
    an edge) and the scan (>= 1 image from an end): (table, gross outlier rows).

    The recorded variances are the sigmas drawn for each reflection; the error actually added
    is `noise_scale` times a draw of that sigma (0 gives exact centroids with realistic weights).
    """
    experiments = truth.experiments
    ids = predicted["id"].astype(np.int64)
    panels = predicted["panel"].astype(np.int64)
    xyz = predicted["xyzcal.mm"]
    px = predicted["xyzcal.px"]
    n_all = predicted.nrows
    pix = np.empty((n_all, 2))
    size = np.empty((n_all, 2))
    osc = np.empty(n_all)
    z_lo = np.empty(n_all)
    z_hi = np.empty(n_all)
    for e, expt in enumerate(experiments):
        sel_e = ids == e
        osc[sel_e] = abs(expt.scan.oscillation_rad[1])
        z_lo[sel_e], z_hi[sel_e] = expt.scan.array_range
        for k, panel in enumerate(expt.detector):
            sel = sel_e & (panels == k)
            pix[sel] = panel.pixel_size
            size[sel] = panel.image_size
    keep = (
        (px[:, 0] >= 1) & (px[:, 0] <= size[:, 0] - 1) & (px[:, 1] >= 1) & (px[:, 1] <= size[:, 1] - 1)
        & (px[:, 2] >= z_lo + 1) & (px[:, 2] <= z_hi - 1)
    )
    rows = np.flatnonzero(keep)
    n = len(rows)
    sig_px = rng.uniform(*truth.sigma_px, size=(n, 2))
    sig_img = rng.uniform(*truth.sigma_images, size=n)
    sigma = np.column_stack([sig_px * pix[rows], sig_img * osc[rows]])
    obs = xyz[rows] + noise_scale * rng.normal(size=(n, 3)) * sigma
    n_out = int(round(truth.outlier_fraction * n))
    out_rows = np.sort(rng.choice(n, size=n_out, replace=False))
    err = rng.uniform(-1.0, 1.0, size=(n_out, 3)) * np.column_stack(
        [truth.outlier_px * pix[rows[out_rows]], truth.outlier_images * osc[rows[out_rows]]])
    obs[out_rows] = xyz[rows[out_rows]] + err
    # a gross outlier may not leave its panel or the scan: clip it back inside
    size_mm = size[rows] * pix[rows]
    obs[:, :2] = np.clip(obs[:, :2], 0.0, size_mm)

    t = ReflectionTable(n)
    t["miller_index"] = predicted["miller_index"][rows]
    t["id"] = ids[rows].astype(np.int32)
    t["panel"] = panels[rows].astype(np.uint64)
    t["flags"] = np.full(n, Flags.indexed | Flags.strong, dtype=np.uint64)
    t["entering"] = predicted["entering"][rows]
    t["xyzobs.mm.value"] = obs
    t["xyzobs.mm.variance"] = sigma**2
    obs_px = np.empty((n, 3))
    for e, expt in enumerate(experiments):
        sel_e = ids[rows] == e
        obs_px[sel_e, 2] = expt.scan.frame_from_angle(obs[sel_e, 2])
        for k, panel in enumerate(expt.detector):
            sel = sel_e & (panels[rows] == k)
            if sel.any():
                obs_px[sel, :2] = panel.mm_to_px(obs[sel, :2])
    t["xyzobs.px.value"] = obs_px
    t["xyzobs.px.variance"] = np.column_stack([sig_px**2, sig_img**2])
    t.identifiers = {i: e.identifier for i, e in enumerate(experiments)}
    order = np.argsort(obs_px[:, 2], kind="stable")
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    return t.select(order), np.sort(inverse[out_rows])


def drop_systematic_absences(experiments: ExperimentList, predicted: ReflectionTable) -> ReflectionTable:
    """The predicted rows whose reflection is not systematically absent (centring, screw axes and
    glides) in its crystal's space group.  Predictors keep screw-axis and glide absences, as
    DIALS's do; a simulation must not observe them, because they have no intensity."""
    import gemmi

    ids = np.asarray(predicted["id"]).astype(np.int64)
    hkl = np.asarray(predicted["miller_index"]).astype(np.int64)
    keep = np.ones(predicted.nrows, dtype=bool)
    for e, expt in enumerate(experiments):
        rows = np.flatnonzero(ids == e)
        if len(rows):
            ops = gemmi.symops_from_hall(expt.crystal.space_group_hall_symbol)
            keep[rows] = ~np.asarray(ops.systematic_absences(hkl[rows]), dtype=bool)
    return predicted if keep.all() else predicted.select(np.flatnonzero(keep))


def simulate(preset_name: str, out_dir: str, seed: int = 0, noise: int = 0) -> str:
    """Write DIR/truth.expt, DIR/start.expt, DIR/observed.refl and DIR/simulation.json.

    `seed` fixes the truth, the start model and the centroid noise; `noise` > 0 draws the centroid
    errors and gross outliers again (draw number `noise`) for the same truth and start model, which is
    what a check of the esds needs."""
    from .io import atomic_write, write_experiments, write_reflections
    from .plugins import registrations
    from .predict import predict_experiments
    from .refine import build_predictors
    from .selection import entering_flags, observed_s1

    presets = registrations("xrefine_simulation_presets")
    if preset_name not in presets:
        raise InputError(f"unknown simulation preset {preset_name!r}; choose one of: {', '.join(sorted(presets))}")
    truth = presets[preset_name].build(seed)
    if noise < 0:
        raise InputError(f"noise={noise} must be 0 (the seed's own draw) or a positive draw number")
    rng = np.random.default_rng([seed, 1] if noise == 0 else [seed, 1, noise])
    predictors = build_predictors(truth.experiments)
    predicted = drop_systematic_absences(truth.experiments, predict_experiments(truth.experiments, predictors, truth.d_min))
    table, outlier_rows = observe(truth, predicted, rng)

    start = copy.deepcopy(truth.start_experiments if truth.start_experiments is not None else truth.experiments)
    # the truth may vary along the scan; an indexer's starting models know nothing of that
    for expt in start:
        for model in (expt.crystal, expt.beam, expt.goniometer):
            clear_scan_points(model)
    shifts = perturb(start, truth, np.random.default_rng([seed, 2]))
    # what an indexer leaves: observed s1 and entering flags from the starting models
    ids = table["id"].astype(np.int64)
    s1 = observed_s1(start, ids, table["panel"].astype(np.int64), table["xyzobs.mm.value"][:, :2])
    table["s1"] = s1
    table["entering"] = entering_flags(start, ids, s1)

    os.makedirs(out_dir, exist_ok=True)
    write_experiments(truth.experiments, os.path.join(out_dir, "truth.expt"))
    write_experiments(start, os.path.join(out_dir, "start.expt"))
    write_reflections(table, os.path.join(out_dir, "observed.refl"))
    facts = {
        "preset": preset_name,
        "seed": seed,
        "noise": noise,
        "d_min": truth.d_min,
        "n_predicted": int(predicted.nrows),
        "n_observed": int(table.nrows),
        "gross_outlier_rows": [int(i) for i in outlier_rows],
        "start_perturbation": shifts,
        **truth.extra,
    }
    atomic_write(os.path.join(out_dir, "simulation.json"), (json.dumps(facts, indent=1) + "\n").encode())
    draw = f" noise draw {noise}" if noise else ""
    return (f"{preset_name} seed {seed}{draw}: {table.nrows} observations ({len(outlier_rows)} gross outliers) "
            f"written to {out_dir}/truth.expt, start.expt, observed.refl")
