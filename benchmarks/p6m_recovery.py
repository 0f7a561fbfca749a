#!/usr/bin/env python
"""Do the module esds of thaumatin-p6m-60 mean what they say?  (issue 4)

    python benchmarks/p6m_recovery.py [--seed 0] [--draws 0-19] [--json FILE]

One truth and one starting model (the preset's `seed`), several draws of the centroid errors
(`simulate(..., noise=k)`; draw 0 is the data set `xrefine simulate` ships).  Each draw is refined
per module (`detector.hierarchy_level=1`, scan-static, defaults otherwise) and every module centre is
compared with the truth along the true module axes.  Per draw the table gives the normalised errors
z = (refined - true) / esd of the 180 centre coordinates (rms per axis, how many beyond 3, the largest),
and the Mahalanobis distance m^2 = e' C^-1 e of each module's centre error with its 3 x 3 covariance
(mean over the modules, expected 3; how many beyond the chi-square(3) quantile 14.16 that holds the
same 99.73 % as +-3 esd).  Below the table: the scatter of each coordinate over the draws divided by
its esd, and the fraction of draws in which all 180 coordinates are within 3 esd, beside what 180
independent normal deviates give (0.9973^180 = 61 %).  About 8 s per draw.
"""

import argparse
import json
import tempfile

import numpy as np

import xrefine
from xrefine.io import read_experiments, read_reflections
from xrefine.simulation import simulate

from number_lists import int_list  # benchmarks/number_lists.py

CHI2_3_9973 = 14.1563  # chi-square(3) quantile at 0.9973, the probability inside +-3 sigma


def centre_errors(truth, refined, panels):
    """(errors um (n, 3) along the true fast, slow, normal axes; covariances (n, 3, 3) um^2)."""
    moves = {p["panel"]: p for p in panels}
    err, cov = [], []
    for k, (pt, pr) in enumerate(zip(truth.panels, refined.panels)):
        w, h = (0.5 * v for v in pt.size_mm)
        ct = pt.origin + w * pt.fast + h * pt.slow
        cr = pr.origin + w * pr.fast + h * pr.slow
        basis = np.array([pt.fast, pt.slow, np.cross(pt.fast, pt.slow)])
        err.append(1000 * basis @ (cr - ct))
        cov.append(moves[k]["offset_cov_um2"])
    return np.array(err), np.array(cov)


def one_draw(seed: int, draw: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        simulate("thaumatin-p6m-60", d, seed, noise=draw)
        truth, start = read_experiments(f"{d}/truth.expt"), read_experiments(f"{d}/start.expt")
        table = read_reflections(f"{d}/observed.refl")
    res = xrefine.refine(start, table, scan_varying="false", detector__hierarchy_level=1)
    err, cov = centre_errors(truth[0].detector, res.experiments[0].detector, res.panels)
    esd = np.sqrt(np.einsum("nii->ni", cov))
    z = err / esd
    m2 = np.einsum("ni,ni->n", err, np.linalg.solve(cov, err[..., None])[..., 0])
    r = res.rmsd_by_experiment[0]
    return {
        "draw": draw, "n_reflections": r["n_reflections"],
        "rmsd_px": [r["rmsd_x_px"], r["rmsd_y_px"]], "rmsd_images": r["rmsd_z_images"],
        "error_um": err.tolist(), "esd_um": esd.tolist(),
        "rms_z": np.sqrt(np.mean(z**2, axis=0)).tolist(),
        "n_beyond_3": int(np.sum(np.abs(z) > 3)), "max_abs_z": float(np.abs(z).max()),
        "worst": [int(i) for i in np.unravel_index(np.argmax(np.abs(z)), z.shape)],
        "mean_m2": float(m2.mean()), "n_m2_beyond": int(np.sum(m2 > CHI2_3_9973)), "max_m2": float(m2.max()),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--draws", default="0-19")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    rows = []
    print("| draw | nref | RMSD X, Y (px) | rms z fast / slow / normal | beyond 3 esd | max abs z (module, axis) "
          "| mean m² | m² > 14.16 |")
    print("|---" * 8 + "|")
    for k in int_list(args.draws):
        r = one_draw(args.seed, k)
        rows.append(r)
        axis = "fast slow normal".split()[r["worst"][1]]
        print(f"| {k} | {r['n_reflections']} | {r['rmsd_px'][0]:.4f}, {r['rmsd_px'][1]:.4f} | "
              + " / ".join(f"{v:.2f}" for v in r["rms_z"])
              + f" | {r['n_beyond_3']} | {r['max_abs_z']:.2f} ({r['worst'][0]}, {axis}) | {r['mean_m2']:.2f} | "
              f"{r['n_m2_beyond']} |", flush=True)
    err = np.array([r["error_um"] for r in rows])  # (draws, modules, 3)
    esd = np.array([r["esd_um"] for r in rows])
    n = len(rows)
    all_in = sum(r["n_beyond_3"] == 0 for r in rows)
    all_m2 = sum(r["n_m2_beyond"] == 0 for r in rows)
    print(f"\n{n} draws of seed {args.seed}'s truth:")
    if n > 1:
        scatter = err.std(axis=0, ddof=1) / esd.mean(axis=0)  # (modules, 3)
        bias = err.mean(axis=0) / (esd.mean(axis=0) / np.sqrt(n))
        print("  scatter over the draws / esd, rms over the modules (fast, slow, normal): "
              + ", ".join(f"{v:.2f}" for v in np.sqrt(np.mean(scatter**2, axis=0))))
        print("  mean error / (esd / sqrt(draws)), rms over the modules (expected 1 without bias): "
              + ", ".join(f"{v:.2f}" for v in np.sqrt(np.mean(bias**2, axis=0))))
    print(f"  all 180 coordinates within 3 esd in {all_in} of {n} draws ({100 * all_in / n:.0f} %); "
          f"180 independent normal deviates: {100 * 0.9973**180:.0f} %")
    print(f"  all 60 modules with m² <= 14.16 in {all_m2} of {n} draws ({100 * all_m2 / n:.0f} %); "
          f"60 independent modules: {100 * 0.9973**60:.0f} %")
    print(f"  mean m² over all draws and modules {np.mean([r['mean_m2'] for r in rows]):.2f} (expected 3)")
    if args.json:
        # one draw per line, values to 4 decimals (um, esd units): the file stays readable in a diff
        def rounded(v):
            return round(v, 4) if isinstance(v, float) else [rounded(x) for x in v] if isinstance(v, list) else v

        with open(args.json, "w") as f:
            f.write("[\n" + ",\n".join(json.dumps({k: rounded(v) for k, v in r.items()}) for r in rows) + "\n]\n")


if __name__ == "__main__":
    main()
