#!/usr/bin/env python
"""xrefine on the example data sets that DIALS made and refined itself, beside dials.refine's
result: time, peak memory, RMSDs and distance from the true models.

    python benchmarks/dials_examples.py [DATA_DIR ...] [--options key=value ...]

DATA_DIR holds truth.expt, start.expt, indexed.refl and DIALS's refined.expt (default: the
project's shared example folders if they exist, else tests/data/lysozyme-eiger).  Distances
follow the data sets' own definitions: ray-mapping error over a 5 x 5 grid of points on every
true panel (um), panel origin (um) and tilt (mrad), beam direction (mrad), crystal orientation
(mrad) and the largest relative error of a, b, c.
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from xrefine.bench import run_refinement_process
from xrefine.io import read_experiments

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIRS = [ROOT.parent / "shared" / "data" / n for n in ("lysozyme-eiger", "p6m-modules-small")]
# as dials.refine was run on them (see each data set's README)
EXTRA_OPTIONS = {"lysozyme-eiger": ["scan_varying=false"],
                 "p6m-modules-small": ["scan_varying=false", "detector.hierarchy_level=1"]}


def _angle_mrad(a, b):
    c = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.arccos(np.clip(c, -1.0, 1.0)) * 1000)


def distance(truth, other, grid=5):
    det_t, det_o = truth[0].detector, other[0].detector
    mapping, origins, tilts = [], [], []
    u = (np.arange(grid) + 0.5) / grid
    for pt, po in zip(det_t, det_o):
        origins.append(np.linalg.norm(po.origin - pt.origin) * 1000)
        tilts.append(max(_angle_mrad(po.fast, pt.fast), _angle_mrad(po.slow, pt.slow)))
        w, h = pt.size_mm
        X, Y = (m.ravel() for m in np.meshgrid(u * w, u * h))
        lab = pt.origin + X[:, None] * pt.fast + Y[:, None] * pt.slow
        v = lab @ po.D.T
        mapping.append(np.hypot(v[:, 0] / v[:, 2] - X, v[:, 1] / v[:, 2] - Y) * 1000)
    mapping = np.concatenate(mapping)
    Mt, Mo = truth[0].crystal.real_space, other[0].crystal.real_space
    U, _, Vt = np.linalg.svd(np.linalg.solve(Mt, Mo).T)
    R = U @ Vt
    lt, lo = np.linalg.norm(Mt, axis=1), np.linalg.norm(Mo, axis=1)
    return {
        "ray mapping rms (max) um": f"{np.sqrt(np.mean(mapping**2)):.1f} ({mapping.max():.1f})",
        "panel origin rms (max) um": f"{np.sqrt(np.mean(np.square(origins))):.1f} ({max(origins):.1f})",
        "panel tilt rms (max) mrad": f"{np.sqrt(np.mean(np.square(tilts))):.3f} ({max(tilts):.3f})",
        "beam direction mrad": f"{_angle_mrad(truth[0].beam.s0, other[0].beam.s0):.3f}",
        "crystal orientation mrad": f"{np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1)) * 1000:.3f}",
        "cell lengths, largest relative error %": f"{np.max(np.abs(lo / lt - 1)) * 100:.4f}",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="*")
    ap.add_argument("--options", nargs="*", default=[])
    args = ap.parse_args()
    dirs = [Path(d) for d in args.dirs] or [d for d in DEFAULT_DIRS if d.exists()] or [ROOT / "tests/data/lysozyme-eiger"]
    for d in dirs:
        truth = read_experiments(str(d / "truth.expt"))
        with tempfile.TemporaryDirectory() as tmp:
            opts = EXTRA_OPTIONS.get(d.name, []) + args.options
            s = run_refinement_process(str(d / "start.expt"), str(d / "indexed.refl"), tmp, opts)
            ours = read_experiments(os.path.join(tmp, "refined.expt"))
        rows = {"start.expt": distance(truth, read_experiments(str(d / "start.expt"))),
                "xrefine": distance(truth, ours)}
        if (d / "refined.expt").exists():
            rows["dials.refine"] = distance(truth, read_experiments(str(d / "refined.expt")))
        r = s["rmsd_by_experiment"][0]
        print(f"\n## {d.name}  ({' '.join(opts) or 'default options'})\n")
        print(f"xrefine: {s['timings_s']['read_to_write']:.2f} s reading to writing, {s['process_s']:.2f} s process, "
              f"peak RSS {s['peak_rss_mb']:.0f} MB, {s['steps'][-1]['step']} steps ({s['stop_reason']}), "
              f"{r['n_reflections']} reflections used, final RMSD {r['rmsd_x_px']:.5f}, {r['rmsd_y_px']:.5f} px, "
              f"{r['rmsd_z_images']:.5f} images; outliers {json.dumps(s['outliers'])}\n")
        names = list(rows)
        print("| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
        for key in rows["xrefine"]:
            print(f"| {key} | " + " | ".join(rows[n][key] for n in names) + " |")


if __name__ == "__main__":
    main()
