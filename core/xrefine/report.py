"""Reports of a refinement: the text summary (log) and the JSON summary."""

from __future__ import annotations

import json
import math

import numpy as np

__all__ = ["summary_text", "summary_json", "steps_table"]


def _fmt(v, spec=".5g"):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def steps_table(history) -> str:
    sets = any(r.experiment_set for r in history)
    lines = [("   set" if sets else "") + "  step  cycle     nref   RMSD_X(mm)   RMSD_Y(mm)  RMSD_phi(deg)      objective"]
    for r in history:
        lines.append(
            (f"{r.experiment_set + 1:6d}" if sets else "")
            + f"{r.step:6d} {r.macrocycle:6d} {r.n_reflections:8d} {r.rmsd[0]:12.6g} {r.rmsd[1]:12.6g} "
            f"{math.degrees(r.rmsd[2]):14.6g} {r.objective:14.6g}"
        )
    return "\n".join(lines)


def summary_text(res) -> str:
    sel = res.selection
    out = ["xrefine refinement summary", ""]
    out.append(
        f"Reflections: {sel.get('n_table')} in table, {sel.get('n_indexed')} indexed, "
        f"{sel.get('n_close_to_spindle', 0)} close to the spindle, {sel.get('n_outside_scan', 0)} outside the scan, "
        f"{sel.get('n_selected')} selected"
    )
    o = res.outliers
    line = f"Outliers: {o.get('initial', 0)} on the starting model"
    for c in o.get("cycles", []):
        line += f"; re-detected on the converged model: {c['rejected']} ({c['restored']} restored, {c['newly_rejected']} new)"
    line += f"; {o.get('final', 0)} rejected at the end"
    out.append(line)
    for m in sel.get("auto_reduction", []):
        out.append(f"Auto-reduction: {m}")
    for m in sel.get("notes", []):
        out.append(f"Note: {m}")
    n_free = sum(1 for p in res.parameters if not p["fixed"])
    count = f"{n_free} parameters"
    if res.n_refined is not None and res.n_refined != n_free:
        count += f" ({res.n_refined} independent: constrained parameters move as one)"
    out += ["", f"Engine {res.engine}: {count}, {len(res.history)} rows; stopped: {res.stop_reason}", ""]
    out.append(steps_table(res.history))
    out += ["", "RMSDs by experiment:", "   exp     nref   RMSD_X(px)   RMSD_Y(px)  RMSD_Z(images)"]
    for r in res.rmsd_by_experiment:
        out.append(
            f"{r['experiment']:6d} {r['n_reflections']:8d} {_fmt(r['rmsd_x_px']):>12} {_fmt(r['rmsd_y_px']):>12} "
            f"{_fmt(r['rmsd_z_images']):>15}"
        )
    if any(r["panel"] > 0 for r in res.rmsd_by_panel):
        moves = {(m["detector"], m["panel"]): m for m in res.panels}
        out += ["", "By panel: RMSDs, and the offset of the panel's centre (um) and its tilt (mrad) from the start,",
                "along/about its starting fast, slow and normal axes, +/- esd:",
                "   exp  panel     nref  RMSD_X(px)  RMSD_Y(px)  RMSD_Z(im)   offset fast/slow/normal          tilt fast/slow/normal"]
        for r in res.rmsd_by_panel:
            m = moves.get((r["detector"], r["panel"]))
            extra = ""
            if m is not None:
                oe = m["offset_esd_um"] or [None] * 3
                te = m["tilt_esd_mrad"] or [None] * 3
                extra = "  " + " ".join(f"{v:7.1f}({_fmt(e, '.1f')})" for v, e in zip(m["offset_um"], oe))
                extra += "  " + " ".join(f"{v:7.3f}({_fmt(e, '.3f')})" for v, e in zip(m["tilt_mrad"], te))
            out.append(f"{r['experiment']:6d} {r['panel']:6d} {r['n_reflections']:8d} {r['rmsd_x_px']:11.4f} "
                       f"{r['rmsd_y_px']:11.4f} {_fmt(r['rmsd_z_images'], '11.4f')}{extra}")
    out += ["", "Parameters (scaled units: mm, mrad, 1/Angstrom, 1e5 x metric elements):"]
    for p in res.parameters:
        if p["fixed"]:
            continue
        out.append(f"  {p['name']:<28} {p['value']:>16.8g} +/- {_fmt(p['esd'], '.3g'):<10} {p['unit']}")
    for c in res.cells:
        cell = c["cell"]
        esd = c["esd"] or [None] * 6
        # angles fixed by symmetry have esds of rounding size: show them as exactly 0
        parts = [f"{v:.4f}({_fmt(e if e is None or e > 1e-9 else 0.0, '.2g')})" for v, e in zip(cell, esd)]
        out.append(f"  {c['crystal']} cell: " + ", ".join(parts))
    t = res.timings
    out += ["", "Time: " + ", ".join(f"{k} {v:.3f} s" for k, v in t.items())]
    return "\n".join(out)


def summary_json(res) -> str:
    def num(v):
        if v is None:
            return None
        v = float(v)
        return None if math.isnan(v) else v

    doc = {
        "engine": res.engine,
        "stop_reason": res.stop_reason,
        "converged": bool(res.converged),
        "steps": [
            {
                "step": r.step,
                "macrocycle": r.macrocycle,
                "n_reflections": r.n_reflections,
                "rmsd_x_mm": num(r.rmsd[0]),
                "rmsd_y_mm": num(r.rmsd[1]),
                "rmsd_phi_rad": num(r.rmsd[2]),
                "objective": num(r.objective),
                "step_norm": num(r.step_norm),
                "damping": num(r.damping),
                "experiment_set": r.experiment_set,
            }
            for r in res.history
        ],
        "rmsd_by_experiment": res.rmsd_by_experiment,
        "rmsd_by_panel": res.rmsd_by_panel,
        "panels": res.panels,
        "parameters": res.parameters,
        "n_refined_parameters": res.n_refined,
        "cells": res.cells,
        "selection": res.selection,
        "outliers": res.outliers,
        "timings_s": res.timings,
        "options": {k: v for k, v in res.config.changed().items()} if res.config is not None else {},
    }
    return json.dumps(doc, indent=1, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o))
