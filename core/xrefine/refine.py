"""Orchestration and the Python API: ``xrefine.refine(experiments, reflections, **options)``.

options -> plugins asked through hooks for parameterisations, predictors, the outlier detector
and the engine -> problem -> detect outliers -> run -> detect again on the converged model
(restoring wrongly rejected reflections) and refine again until the outlier set is stable ->
esds -> refined models and reflections.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .cell import cell_gradients
from .config import Config, build_config
from .engine import Convergence, StepRecord
from .errors import InputError
from .models import ExperimentList
from .outliers import detect_outliers, resolve_block_widths
from .panel_report import panel_movements, rmsd_by_panel
from .plugins import get_plugin_manager, registrations
from .problem import Observations, RefinementProblem
from .reflections import Flags, ReflectionTable
from .selection import select_observations

__all__ = ["refine", "RefinementResult", "SLOTS", "build_parameterisations", "build_predictors", "predict_table"]

#: parameterisation slots, in the order their parameters appear in the global vector
SLOTS = ("detector", "beam", "crystal.orientation", "crystal.unit_cell", "goniometer")


@dataclass
class RefinementResult:
    """What a refinement produced.  `print(result)` gives the summary report."""

    experiments: ExperimentList
    reflections: ReflectionTable
    parameters: list  # dicts: name, value, esd, unit
    history: list  # StepRecord, all macrocycles
    stop_reason: str
    converged: bool
    rmsd_by_experiment: list  # dicts: experiment, n_reflections, rmsd_x_px, rmsd_y_px, rmsd_z_images
    engine: str
    selection: dict
    outliers: dict
    timings: dict
    covariance: Optional[np.ndarray] = None
    cells: list = field(default_factory=list)  # dicts: crystal, cell, esd
    rmsd_by_panel: list = field(default_factory=list)  # dicts: experiment, panel, n_reflections, rmsds
    panels: list = field(default_factory=list)  # dicts: detector, panel, offset_um, tilt_mrad, esds
    config: Optional[Config] = None
    n_refined: Optional[int] = None  # independent values refined: a constraint group counts once

    def __str__(self) -> str:
        from .report import summary_text

        return summary_text(self)


def _progress(record: StepRecord) -> None:
    get_plugin_manager().hook.xrefine_step_done(record=record)


def build_parameterisations(experiments: ExperimentList, config: Config) -> list:
    builders = registrations("xrefine_parameterisations")
    params = []
    for slot in SLOTS:
        if slot in builders:
            params.extend(builders[slot](experiments, config))
    return params


def build_predictors(experiments: ExperimentList) -> list:
    predictors = registrations("xrefine_predictors")
    out = []
    for i, expt in enumerate(experiments):
        for name, pred in predictors.items():
            if pred.applies_to(expt):
                out.append(pred)
                break
        else:
            kind = "still" if expt.is_still else "rotation scan"
            raise InputError(f"experiment {i} ({kind}): no installed predictor handles it; see `xrefine plugins`")
    return out


def _convergence(experiments: ExperimentList, config: Config) -> Convergence:
    target = None
    f = config["bin_size_fraction"]
    if f and f > 0:
        px = min(min(p.pixel_size) for e in experiments for p in e.detector)
        osc = min((abs(e.scan.oscillation_rad[1]) for e in experiments if not e.is_still), default=np.inf)
        target = np.array([f * px, f * px, f * osc])
    return Convergence(
        step_tolerance_esd=config["step_tolerance_esd"],
        rmsd_tolerance=config["rmsd_tolerance"],
        target_rmsd=target,
        max_iterations=config["max_iterations"],
    )


def _starved_groups(problem: RefinementProblem, need: int) -> list:
    """(parameterisation, its free parameters, n reflections, full columns) for every parameter
    group with fewer than `need` active reflections per parameter.  Columns of one
    parameterisation that see the same reflections (one rigid detector group, or a whole model)
    form a group.  An equal-shift constraint group is one parameter, seen by the reflections of
    all its members; starved, all its members are fixed (its entries name the first member's
    parameterisation)."""
    # the blocks of reflections each column sees: columns with the same blocks form a group
    active = [int(problem.obs.active[b[2]:b[3]].sum()) for b in problem.blocks]
    seen: list = [set() for _ in range(problem.n_full)]
    for k, block in enumerate(problem.blocks):
        for c in problem.block_columns(block):
            seen[c].add(k)

    def n_reflections(columns) -> int:
        return sum(active[k] for k in set().union(*(seen[c] for c in columns)))

    constrained = problem.constraint_groups
    in_constraint = {int(c) for g in constrained for c in g}
    owner = np.repeat(np.arange(len(problem.parameterisations)), np.diff(problem.offsets))
    out = []
    for i, p in enumerate(problem.parameterisations):
        a = problem.offsets[i]
        free = p.free_parameters
        groups: dict = {}
        for j in range(p.num_free):
            if a + j not in in_constraint:
                groups.setdefault(frozenset(seen[a + j]), []).append(j)
        for cols in groups.values():
            nref = n_reflections([a + cols[0]])
            if nref < need * len(cols):
                out.append((p, [free[j] for j in cols], nref, a + np.array(cols)))
    for g in constrained:
        nref = n_reflections(g)
        if nref < need:
            members = [problem.parameterisations[owner[c]].free_parameters[c - problem.offsets[owner[c]]] for c in g]
            out.append((problem.parameterisations[owner[g[0]]], members, nref, g))
    return out


def _describe_starved(problem: RefinementProblem, starved: list) -> list:
    """One text per starved group: its parameters, its reflections and its parameter count."""
    constrained = {tuple(g) for g in problem.constraint_groups}
    return [f"{', '.join(p.name + q.name for q in qs)}: {nref} reflections for "
            + ("1 constrained parameter" if tuple(cols) in constrained
               else f"{len(qs)} parameter{'s' if len(qs) > 1 else ''}")
            for p, qs, nref, cols in starved]


def _rows_seeing(problem: RefinementProblem, columns: np.ndarray) -> np.ndarray:
    """Mask of the observation rows whose predictions depend on any of the full-vector
    `columns`: every row of each block that has one of them among its columns."""
    mask = np.zeros(len(problem.obs), dtype=bool)
    for block in problem.blocks:
        if np.isin(problem.block_columns(block), columns).any():
            mask[block[2]:block[3]] = True
    return mask


def _where(obs: Observations, rows: np.ndarray, before: np.ndarray) -> str:
    """Where the removed `rows` (mask) were, by experiment: all of its reflections (those in
    `before`, the rows not removed before), or how many on which panels."""
    n_exp = int(obs.experiment.max()) + 1
    n_rows = np.bincount(obs.experiment[rows], minlength=n_exp)
    n_before = np.bincount(obs.experiment[before], minlength=n_exp)
    pairs = np.unique(np.column_stack([obs.experiment[rows], obs.panel[rows]]), axis=0)  # sorted by experiment
    parts = []
    for e, panels in zip(*_groups(pairs)):
        if n_rows[e] == n_before[e]:
            parts.append(f"experiment {e}: all {n_rows[e]}")
            continue
        on = (f"panel {panels[0]}" if len(panels) == 1 else f"{len(panels)} panels" if len(panels) > 6
              else "panels " + ", ".join(str(k) for k in panels))
        parts.append(f"experiment {e}: {n_rows[e]} on {on}")
    return "; ".join(parts)


def _groups(pairs: np.ndarray) -> tuple:
    """(keys, value arrays) of (key, value) rows sorted by key."""
    keys, starts = np.unique(pairs[:, 0], return_index=True)
    return keys, np.split(pairs[:, 1], starts[1:])


def _auto_reduce(problem: RefinementProblem, config: Config) -> list:
    """Fix (or refuse) parameter groups with too few reflections; returns messages.

    With action=remove, the reflections whose predictions depend on a fixed group are also
    taken out of refinement for good (`obs.removed`), as dials.refine does; a removal can starve
    other groups, so the check repeats until no group is starved."""
    need = config["auto_reduction.min_nref_per_parameter"]
    action = config["auto_reduction.action"]
    obs = problem.obs
    messages, fixed = [], []
    while True:
        starved = _starved_groups(problem, need)
        if not starved:
            return messages
        described = _describe_starved(problem, starved)
        if action == "fail":
            raise InputError(
                "too few reflections to refine " + "; ".join(described)
                + f" (need {need} per parameter); set auto_reduction.action=fix, fix those parameters, or add reflections"
            )
        depending = _rows_seeing(problem, np.concatenate([c for *_, c in starved])) if action == "remove" else None
        for _, qs, _, _ in starved:
            for q in qs:
                q.fixed = True
        problem.refresh()
        messages += [f"fixed {m}" for m in described]
        if action != "remove":
            return messages
        fixed += described
        before = ~obs.removed
        new = depending & before
        obs.removed |= depending
        obs.active &= before & ~depending
        if not obs.active.any():
            raise InputError(
                "auto_reduction.action=remove left no reflections to refine: it fixed " + "; ".join(fixed)
                + f" (need {need} per parameter) and removed the reflections that depend on them; "
                "set auto_reduction.action=fix, lower auto_reduction.min_nref_per_parameter, or add reflections"
            )
        if problem.n_params == 0:
            raise InputError(
                "nothing to refine: auto_reduction.action=remove fixed every parameter (" + "; ".join(fixed)
                + f"; need {need} per parameter); set auto_reduction.action=fix or add reflections"
            )
        if new.any():
            messages.append(f"removed {int(new.sum())} reflections that depend on the parameters fixed above "
                            f"({_where(obs, new, before)})")
            n_exp = int(obs.experiment.max()) + 1
            left = np.bincount(obs.experiment[~obs.removed], minlength=n_exp)
            hit = np.bincount(obs.experiment[new], minlength=n_exp)
            messages += [f"experiment {e} has no reflections left in refinement" for e in np.flatnonzero((hit > 0) & (left == 0))]


def _protect_starved(problem: RefinementProblem, candidates: np.ndarray, need: int) -> int:
    """Undo the start-model rejection for the blocks of any parameter group it starved: those
    residuals are large because the model is still wrong, and the group cannot be refined
    without them.  Returns the number of reflections restored."""
    starved = _starved_groups(problem, need)
    if not starved:
        return 0
    o = problem.obs
    before = int(o.active.sum())
    # reflections removed by auto-reduction (action=remove) stay out
    o.active |= _rows_seeing(problem, np.concatenate([c for *_, c in starved])) & candidates & ~o.removed
    return int(o.active.sum()) - before


def _propagate_esds(problem: RefinementProblem, cov: Optional[np.ndarray], experiments: ExperimentList) -> list:
    """Parameter esds, crystal B covariance and cell esds."""
    cells = []
    for i, p in enumerate(problem.parameterisations):
        a, b = problem.offsets[i], problem.offsets[i + 1]
        for j, q in enumerate(p.free_parameters):
            q.esd = float(np.sqrt(cov[a + j, a + j])) if cov is not None else None
        if p.kind == "crystal.B" and p.num_free:
            V = cov[a:b, a:b] if cov is not None else None
            dB = p.state_derivatives()
            if V is not None:
                J = dB.reshape(p.num_free, 9).T
                p.model.B_covariance = J @ V @ J.T
                g = cell_gradients(p.model.B, dB)
                esd = np.sqrt(np.maximum(np.einsum("ki,kl,li->i", g, V, g), 0.0))
            else:
                p.model.B_covariance = None  # the input's covariance describes another model
                esd = None
            cells.append({"crystal": p.name, "cell": p.model.unit_cell.tolist(),
                          "esd": esd.tolist() if esd is not None else None})
    return cells


def _rmsd_by_experiment(problem: RefinementProblem, ev) -> list:
    o = problem.obs
    out = []
    for e, expt in enumerate(problem.experiments):
        sel = ev.used & (o.experiment == e)
        n = int(sel.sum())
        if n == 0:
            out.append({"experiment": e, "n_reflections": 0, "rmsd_x_px": None, "rmsd_y_px": None, "rmsd_z_images": None})
            continue
        r = ev.xyz_calc[sel] - o.xyz_obs[sel]
        pix = np.array([p.pixel_size for p in expt.detector])[o.panel[sel]]
        rx = float(np.sqrt(np.mean((r[:, 0] / pix[:, 0]) ** 2)))
        ry = float(np.sqrt(np.mean((r[:, 1] / pix[:, 1]) ** 2)))
        rz = None
        if not expt.is_still:
            rz = float(np.sqrt(np.mean(r[:, 2] ** 2)) / abs(expt.scan.oscillation_rad[1]))
        out.append({"experiment": e, "n_reflections": n, "rmsd_x_px": rx, "rmsd_y_px": ry, "rmsd_z_images": rz})
    return out


def predict_table(experiments: ExperimentList, table: ReflectionTable, predictors: list, rows: np.ndarray,
                  parameterisations=(), config=None):
    """Predict the given rows of `table` for their own index, panel and entering flag, with the
    models as `parameterisations` (scan-varying ones included) currently hold them:
    (xyz_calc mm/rad, s1, valid) in the order of `rows`."""
    from .selection import entering_flags, observed_s1

    ids = np.asarray(table["id"]).astype(np.int64)[rows]
    panels = np.asarray(table["panel"]).astype(np.int64)[rows]
    xyz = np.asarray(table["xyzobs.mm.value"], dtype=float)[rows] if "xyzobs.mm.value" in table else np.zeros((len(rows), 3))
    if "entering" in table:
        entering = np.asarray(table["entering"], dtype=bool)[rows]
    else:
        entering = entering_flags(experiments, ids, observed_s1(experiments, ids, panels, xyz[:, :2]))
    obs = Observations.build(np.arange(len(rows)), ids, panels, np.asarray(table["miller_index"])[rows], entering, xyz,
                             np.ones((len(rows), 3)))
    sv = [p for p in parameterisations if p.scan_varying]
    if sv:
        from .scan_varying import composition_frames

        obs.frame = composition_frames(obs, experiments, config["compose_model_per"], config["block_width"])
    problem = RefinementProblem(experiments, obs, sv, predictors)
    ev = problem.evaluate(problem.get_x(), derivatives=False)
    out_xyz = np.empty_like(ev.xyz_calc)
    out_s1 = np.empty_like(ev.s1)
    out_valid = np.empty_like(ev.valid)
    out_xyz[obs.rows] = ev.xyz_calc
    out_s1[obs.rows] = ev.s1
    out_valid[obs.rows] = ev.valid
    return out_xyz, out_s1, out_valid


def _write_predictions(experiments, table: ReflectionTable, predictors, used_rows, outlier_rows, excluded_rows,
                       parameterisations, config):
    out = copy.copy(table)
    out.columns = dict(table.columns)
    out.types = dict(table.types)
    n = table.nrows
    ids = np.asarray(table["id"]).astype(np.int64)
    miller = np.asarray(table["miller_index"])
    rows = np.flatnonzero((ids >= 0) & np.any(miller != 0, axis=1))
    xyz, s1, valid = predict_table(experiments, table, predictors, rows, parameterisations, config)
    xyzcal_mm = np.array(table["xyzcal.mm"], dtype=float) if "xyzcal.mm" in table else np.zeros((n, 3))
    xyzcal_px = np.array(table["xyzcal.px"], dtype=float) if "xyzcal.px" in table else np.zeros((n, 3))
    s1_col = np.array(table["s1"], dtype=float) if "s1" in table else np.zeros((n, 3))
    good = rows[valid]
    xyzcal_mm[good] = xyz[valid]
    s1_col[good] = s1[valid]
    panels = np.asarray(table["panel"]).astype(np.int64)
    key = ids[good] * (int(panels.max(initial=0)) + 1) + panels[good]
    for k in np.unique(key):
        sel = good[key == k]
        expt = experiments[int(ids[sel[0]])]
        panel = expt.detector[int(panels[sel[0]])]
        xyzcal_px[sel, :2] = panel.mm_to_px(xyzcal_mm[sel, :2])
        xyzcal_px[sel, 2] = expt.scan.frame_from_angle(xyzcal_mm[sel, 2]) if not expt.is_still else 0.0
    out["xyzcal.mm"] = xyzcal_mm
    out["xyzcal.px"] = xyzcal_px
    out["s1"] = s1_col
    flags = np.array(table["flags"], dtype=np.uint64) if "flags" in table else np.zeros(n, dtype=np.uint64)
    flags &= ~np.uint64(Flags.used_in_refinement | Flags.centroid_outlier)
    out["flags"] = flags
    out.set_flags(np.isin(np.arange(n), good), Flags.predicted)
    out.set_flags(np.isin(np.arange(n), used_rows), Flags.used_in_refinement)
    out.set_flags(np.isin(np.arange(n), outlier_rows), Flags.centroid_outlier)
    out.set_flags(np.isin(np.arange(n), excluded_rows), Flags.excluded_for_refinement)
    return out


def _as_experiments(experiments) -> ExperimentList:
    if isinstance(experiments, ExperimentList):
        return copy.deepcopy(experiments)
    from .io import read_experiments

    return read_experiments(str(experiments))


def _as_reflections(reflections) -> tuple:
    if isinstance(reflections, ReflectionTable):
        return reflections, "reflections"
    from .io import read_reflections

    return read_reflections(str(reflections)), str(reflections)


def _extra_terms(params: list, experiments: ExperimentList, config: Config) -> tuple:
    """(restraints, constraint groups) from every plugin that provides them."""
    restraints, constraints = [], []
    for build in registrations("xrefine_restraints").values():
        restraints.extend(build(params, experiments, config))
    for build in registrations("xrefine_constraints").values():
        constraints.extend(build(params, experiments, config))
    return restraints, constraints


def _restraint_rows_by_name(problem: RefinementProblem) -> dict:
    return {r.name or type(r).__name__: len(r.rows(problem).residuals) for r in problem.restraints}


def _problem(experiments, obs, params, predictors, config) -> RefinementProblem:
    restraints, constraints = _extra_terms(params, experiments, config)
    return RefinementProblem(experiments, obs, params, predictors, config["chunk_size"], restraints, constraints)


def _run_cycles(problem, engine, convergence, detect, history, outlier_info, config, phase: str, redetect: bool = True,
                set_index: int = 0, reductions: Optional[list] = None):
    """Engine runs separated by outlier re-detection on the converged model (restoring wrongly
    rejected reflections), until the outlier set is stable or outlier.max_cycles is reached
    (one run only when `redetect` is False).  Auto-reduction messages go to `reductions`."""
    cycle = 0
    while True:
        offset = history[-1].step if history else 0
        number = history[-1].macrocycle + 1 if history else 0

        def on_step(rec, _number=number, _offset=offset):
            # steps count on across macrocycles; a later cycle's step 0 is the previous end
            # evaluated with the new outlier set (or the new parameterisation)
            rec.macrocycle = _number
            rec.step += _offset
            rec.experiment_set = set_index
            history.append(rec)
            _progress(rec)

        result = engine.run(problem, problem.get_x(), convergence, on_step)
        cycle += 1
        if detect is None or not redetect or not config["outlier.reject_again"] or cycle >= config["outlier.max_cycles"]:
            return result
        obs = problem.obs
        ev = problem.evaluate(problem.get_x(), derivatives=False)
        new_rejected = detect(ev)  # rows removed by auto-reduction come back as rejected
        if np.array_equal(new_rejected, ~obs.active):
            return result
        outlier_info.setdefault("cycles", []).append(
            {"phase": phase, "rejected": int((new_rejected & ~obs.removed).sum()),
             "restored": int((~obs.active & ~new_rejected).sum()), "newly_rejected": int((obs.active & new_rejected).sum())})
        obs.active = ~new_rejected & ~obs.removed
        messages = _auto_reduce(problem, config)
        if reductions is not None:
            reductions += messages


def refine(experiments, reflections, *, config: Optional[Config] = None, config_file: Optional[str] = None,
           arguments=(), **options) -> RefinementResult:
    """Refine `experiments` (ExperimentList or .expt path) against `reflections`
    (ReflectionTable or .refl path).  Options as keyword arguments (dots written as double
    underscores: ``detector__hierarchy_level=1``), ``key=value`` strings in `arguments`, a TOML
    `config_file`, or a prepared `config`.  The inputs are not modified.

    With scan_varying=auto (the default) rotation scans get a scan-static refinement and then a
    scan-varying one; scan_varying=true goes straight to the scan-varying one.  Experiments that
    share no model with each other are refined as independent sets (split_independent_sets)."""
    from .independent_sets import independent_sets, merge_results, subset

    t_start = time.perf_counter()
    if config is None:
        config = build_config(config_file, arguments, options)
    experiments = _as_experiments(experiments)
    table, source = _as_reflections(reflections)
    t_read = time.perf_counter() - t_start
    sets = [list(range(len(experiments)))]
    if config["split_independent_sets"]:
        # restraints and constraints may tie models of otherwise unrelated experiments
        restraints, constraints = _extra_terms(build_parameterisations(experiments, config), experiments, config)
        if not restraints and not constraints:
            sets = independent_sets(experiments)
    if len(sets) == 1:
        res = _refine_set(experiments, table, source, config)
        res.timings = {"read": t_read, **res.timings, "total": time.perf_counter() - t_start}
    else:
        from .selection import check_table

        check_table(experiments, table, source)
        parts = []
        for k, members in enumerate(sets):
            sub_experiments, sub_table, rows = subset(experiments, table, members)
            parts.append((members, rows, _refine_set(sub_experiments, sub_table, source, config, set_index=k)))
        res = merge_results(experiments, table, parts, config)
        res.timings = {"read": t_read, **res.timings, "total": time.perf_counter() - t_start}
    get_plugin_manager().hook.xrefine_refinement_finished(result=res)
    return res


def _refine_set(experiments: ExperimentList, table: ReflectionTable, source: str, config: Config,
                set_index: int = 0) -> RefinementResult:
    """Refinement of experiments that form one connected set (the whole job, usually)."""
    from .scan_varying import composition_frames, make_scan_varying, wants_scan_varying, write_scan_points

    timings = {}
    t = time.perf_counter()
    obs, selection = select_observations(experiments, table, config, source)
    params = build_parameterisations(experiments, config)
    predictors = build_predictors(experiments)
    engines = registrations("xrefine_engines")
    if config["engine"] not in engines:
        raise InputError(f"engine={config['engine']!r} is not installed; choose one of: {', '.join(sorted(engines))}")
    engine = engines[config["engine"]](config)
    scan_varying = wants_scan_varying(experiments, config)
    if scan_varying:
        obs.frame = composition_frames(obs, experiments, config["compose_model_per"], config["block_width"])
    static_first = not scan_varying or config["scan_varying"] == "auto"
    if not static_first:
        params = make_scan_varying(params, experiments, config, obs)
    problem = _problem(experiments, obs, params, predictors, config)
    timings["setup"] = time.perf_counter() - t

    # outliers on the starting model, as DIALS does
    t = time.perf_counter()
    algorithm = config["outlier.algorithm"]
    detector = final_detector = None
    if algorithm not in ("null", "none"):
        detectors = registrations("xrefine_outlier_detectors")
        if algorithm not in detectors:
            raise InputError(f"outlier.algorithm={algorithm!r} is not installed; choose one of: null, {', '.join(sorted(detectors))}")
        detector = detectors[algorithm](config)
        final_detector = detectors[algorithm](config, converged=True)

    block_widths = None  # outlier.block_width resolved on the starting model (below), kept for re-detection

    def detect_with(ev, which):
        cand = ev.valid & ~obs.removed  # rows removed by auto-reduction are no candidates
        resid = np.where(cand[:, None], ev.xyz_calc - obs.xyz_obs, 0.0)
        rejected = detect_outliers(which, obs, resid, cand, experiments, block_widths,
                                   config["outlier.minimum_number_of_reflections"],
                                   config["outlier.separate_experiments"], config["outlier.separate_panels"])
        return rejected | ~cand

    detect = (lambda ev: detect_with(ev, final_detector)) if detector is not None else None
    ev0 = problem.evaluate(problem.get_x(), derivatives=False)
    obs.active = ev0.valid.copy()
    reductions = _auto_reduce(problem, config)
    if problem.n_params == 0:
        raise InputError("nothing to refine: every parameter is fixed")
    candidates = ev0.valid & ~obs.removed
    block_widths = resolve_block_widths(config["outlier.block_width"], obs, candidates, experiments)
    rejected = detect_with(ev0, detector) if detector is not None else ~candidates
    outlier_info = {"initial": int((rejected & candidates).sum()), "no_prediction": int((~ev0.valid).sum())}
    obs.active = ~rejected
    outlier_info["protected"] = _protect_starved(problem, candidates, config["auto_reduction.min_nref_per_parameter"])
    timings["outliers"] = time.perf_counter() - t

    notes: list = []
    initial_states = {id(p): p.state().copy() for p in problem.parameterisations if p.kind == "detector.d"}
    pm = get_plugin_manager()
    pm.hook.xrefine_refinement_started(problem=problem, config=config)
    convergence = _convergence(experiments, config)
    history: list = []
    t = time.perf_counter()
    # before a scan-varying phase the static model still carries the drift, so outliers are
    # re-detected only once the scan-varying model has converged
    result = _run_cycles(problem, engine, convergence, detect, history, outlier_info, config,
                         "static" if static_first else "scan-varying", redetect=not (scan_varying and static_first),
                         set_index=set_index, reductions=reductions)
    if scan_varying and static_first:
        timings["refine_static"] = time.perf_counter() - t
        params = make_scan_varying(problem.parameterisations, experiments, config, obs)
        rows_static = _restraint_rows_by_name(problem)
        problem = _problem(experiments, obs, params, predictors, config)
        rows_varying = _restraint_rows_by_name(problem)
        for name, n in rows_static.items():
            if rows_varying.get(name, 0) < n:
                notes.append(f"restraint {name} acts in the static phase only ({n - rows_varying.get(name, 0)} of "
                             f"its {n} rows are on parameters refined scan-varying)")
        reductions += _auto_reduce(problem, config)
        result = _run_cycles(problem, engine, convergence, detect, history, outlier_info, config, "scan-varying",
                             set_index=set_index, reductions=reductions)
    timings["refine"] = time.perf_counter() - t

    t = time.perf_counter()
    final = result.extra.get("evaluation")
    if final is None or final.normal is None or not np.array_equal(final.x, problem.get_x()):
        final = problem.evaluate(problem.get_x(), derivatives=True)
    cov = problem.covariance(final)
    cells = _propagate_esds(problem, cov, experiments)
    write_scan_points(problem.parameterisations, problem.offsets, cov, experiments)
    # reflections removed by auto-reduction are neither used nor outliers
    outlier_info["final"] = int((~obs.active & final.valid & ~obs.removed).sum())
    used_rows = obs.rows[final.used]
    outlier_rows = obs.rows[~obs.active & final.valid & ~obs.removed]
    excluded_rows = selection.pop("excluded_rows")
    out_table = _write_predictions(experiments, table, predictors, used_rows, outlier_rows, excluded_rows,
                                   problem.parameterisations, config)
    timings["finish"] = time.perf_counter() - t

    parameters = [
        {"name": f"{p.name}{q.name}", "value": q.value, "esd": q.esd, "unit": q.unit, "fixed": q.fixed}
        for p in problem.parameterisations
        for q in p.parameters
    ]
    res = RefinementResult(
        experiments=experiments,
        reflections=out_table,
        parameters=parameters,
        history=history,
        stop_reason=result.stop_reason,
        converged=result.converged,
        rmsd_by_experiment=_rmsd_by_experiment(problem, final),
        rmsd_by_panel=rmsd_by_panel(problem, final),
        panels=panel_movements(problem, initial_states, cov),
        engine=config["engine"],
        selection={**selection, "auto_reduction": reductions, "notes": notes},
        outliers=outlier_info,
        timings=timings,
        covariance=cov,
        cells=cells,
        config=config,
        n_refined=problem.n_params,
    )
    return res
