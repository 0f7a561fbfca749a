#!/usr/bin/env python
"""Benchmark: engines side by side on a simulated scenario, each in a fresh process.

    python benchmarks/engines.py [--scenario thaumatin-sweep] [--engines lm,gn,scipy-trf] [--repeats 3] [--seed 0] [key=value ...]

Prints a Markdown table (median of the repeats for times and memory) and writes the raw rows to
benchmarks/results/thaumatin-sweep.json.  wall_s is reading the input to writing the output,
measured inside the refinement process; process_s includes starting Python.
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="thaumatin-sweep")
    ap.add_argument("--engines", default="lm,gn,scipy-trf")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("options", nargs="*", default=["scan_varying=false"],
                    help="key=value options for every run (default: scan_varying=false, the scan-static job)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            out = Path(tmp) / f"run{k}.json"
            subprocess.run([sys.executable, "-m", "xrefine.cli", "bench", args.scenario, "--engines", args.engines,
                            "--json", str(out), f"seed={args.seed}", *args.options], check=True, stdout=subprocess.DEVNULL)
            rows.extend(json.loads(out.read_text()))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"{args.scenario}.json").write_text(json.dumps(rows, indent=1) + "\n")
    cols = ["engine", "n_reflections", "n_parameters", "steps", "wall_s", "process_s", "peak_rss_mb",
            "rmsd_x_px", "rmsd_y_px", "rmsd_z_images", "converged"]
    print(f"{args.scenario}, seed {args.seed}, {' '.join(args.options)}, median of {args.repeats}; {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for engine in args.engines.split(","):
        mine = [r for r in rows if r["engine"] == engine]
        med = {c: statistics.median(r[c] for r in mine) for c in ("wall_s", "process_s", "peak_rss_mb")}
        r = {**mine[0], **{k: round(v, 3) for k, v in med.items()}}
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
