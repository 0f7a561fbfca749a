#!/usr/bin/env python
"""Joint refinement against refining each lattice alone, on polyhedrin-5sweeps (issue 4).

    python benchmarks/joint_polyhedrin.py [--seed 0]

16 cubic lattices in 5 narrow sweeps share one detector and one beam.  Refined jointly, the
detector and beam are determined by all of them; refined alone, each narrow wedge must determine
them by itself, and crystal-detector correlations spoil its cell.  Prints a Markdown table of
each lattice's cell error and esd both ways.
"""

import argparse
import copy
import tempfile

import numpy as np

import xrefine
from xrefine.independent_sets import subset
from xrefine.io import read_experiments, read_reflections
from xrefine.simulation import simulate


def refine_both(seed: int, **options):
    with tempfile.TemporaryDirectory() as d:
        simulate("polyhedrin-5sweeps", d, seed)
        truth = read_experiments(f"{d}/truth.expt")
        start = read_experiments(f"{d}/start.expt")
        table = read_reflections(f"{d}/observed.refl")
    joint = xrefine.refine(start, table, **options)
    alone = []
    for i in range(len(start)):
        one, rows_table, _ = subset(start, table, [i])
        one = copy.deepcopy(one)  # its own copy of the shared detector and beam
        alone.append(xrefine.refine(one, rows_table, **options))
    return truth, joint, alone


def cell_a(res, k=0):
    c = res.cells[k]
    return c["cell"][0], c["esd"][0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    truth, joint, alone = refine_both(args.seed, scan_varying="false")
    a_true = truth[0].crystal.unit_cell[0]
    print(f"polyhedrin-5sweeps, seed {args.seed}: true a = {a_true:.4f} A\n")
    print("| lattice | joint a - true (A) | joint esd | alone a - true (A) | alone esd |")
    print("|---|---|---|---|---|")
    rows = []
    for i, res in enumerate(alone):
        aj, ej = cell_a(joint, i)
        aa, ea = cell_a(res)
        rows.append((aj - a_true, ej, aa - a_true, ea))
        print(f"| {i} | {aj - a_true:+.4f} | {ej:.4f} | {aa - a_true:+.4f} | {ea:.4f} |")
    r = np.array(rows)
    print(f"| rms / mean | {np.sqrt(np.mean(r[:, 0]**2)):.4f} | {r[:, 1].mean():.4f} | "
          f"{np.sqrt(np.mean(r[:, 2]**2)):.4f} | {r[:, 3].mean():.4f} |")


if __name__ == "__main__":
    main()
