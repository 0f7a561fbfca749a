"""``xrefine bench``: engines side by side on one simulated scenario, each in a fresh process.

Each row: scenario, engine, n_reflections, n_parameters, steps, wall_s (reading the input to
writing the output, measured inside the refinement process), process_s (the whole process,
interpreter start included), peak_rss_mb (the child's maximum resident set), RMSDs, converged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Optional

from .errors import InputError

__all__ = ["bench", "run_refinement_process"]


def run_refinement_process(expt: str, refl: str, workdir: str, arguments=()) -> dict:
    """Run ``xrefine refine`` in a new process in `workdir`; its JSON summary plus process
    wall time and peak RSS (MB)."""
    cmd = [sys.executable, "-m", "xrefine.cli", "refine", os.path.abspath(expt), os.path.abspath(refl), *arguments]
    t0 = time.perf_counter()
    with open(os.path.join(workdir, "stdout.txt"), "w") as out, open(os.path.join(workdir, "stderr.txt"), "w") as err:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = open(os.path.join(workdir, "stderr.txt")).read().strip().splitlines()[-1:]
        raise InputError(f"refinement failed in {workdir} (exit {code}): {' '.join(tail)}")
    with open(os.path.join(workdir, "xrefine.json")) as fh:
        summary = json.load(fh)
    summary["process_s"] = wall
    summary["peak_rss_mb"] = usage.ru_maxrss / 1024.0  # Linux reports KiB
    return summary


def bench(scenario: str, engines: list, json_path: Optional[str], arguments=()) -> list:
    from .simulation import simulate

    seed = 0
    rest = []
    for a in arguments:
        if a.startswith("seed="):
            try:
                seed = int(a.split("=", 1)[1])
            except ValueError:
                raise InputError(f"{a!r}: the seed must be an integer") from None
        else:
            rest.append(a)
    rows = []
    with tempfile.TemporaryDirectory(prefix="xrefine-bench-") as tmp:
        data = os.path.join(tmp, "data")
        simulate(scenario, data, seed)
        for engine in engines:
            work = os.path.join(tmp, engine)
            os.makedirs(work)
            s = run_refinement_process(os.path.join(data, "start.expt"), os.path.join(data, "observed.refl"), work,
                                       [f"engine={engine}", *rest])
            last = s["steps"][-1]
            exp0 = s["rmsd_by_experiment"]
            n_ref = sum(r["n_reflections"] for r in exp0)

            def mean(key):
                vals = [r[key] for r in exp0 if r[key] is not None]
                return round(sum(vals) / len(vals), 5) if vals else None

            rows.append({
                "scenario": scenario,
                "engine": engine,
                "n_reflections": n_ref,
                "n_parameters": sum(1 for p in s["parameters"] if not p["fixed"]),
                "steps": last["step"],
                "wall_s": round(s["timings_s"]["read_to_write"], 3),
                "process_s": round(s["process_s"], 3),
                "peak_rss_mb": round(s["peak_rss_mb"], 1),
                "rmsd_x_px": mean("rmsd_x_px"),
                "rmsd_y_px": mean("rmsd_y_px"),
                "rmsd_z_images": mean("rmsd_z_images"),
                "converged": s["converged"],
            })
    if json_path:
        from .io import atomic_write

        atomic_write(json_path, (json.dumps(rows, indent=1) + "\n").encode())
    return rows
