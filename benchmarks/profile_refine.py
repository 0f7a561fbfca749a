#!/usr/bin/env python
"""Where the time of one refinement goes: cProfile of ``xrefine refine`` (read to write) on a
simulated scenario, the phases xrefine times itself, and the functions with most own time.

    python benchmarks/profile_refine.py [--scenario thaumatin-sweep] [--top 15] [key=value ...]
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="thaumatin-sweep")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("options", nargs="*")
    args = ap.parse_args()
    from xrefine.cli import main as cli
    from xrefine.simulation import simulate

    with tempfile.TemporaryDirectory() as tmp:
        simulate(args.scenario, tmp, 0)
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            argv = ["refine", "start.expt", "observed.refl", *args.options]
            cli(argv)  # warm caches (imports, plugin discovery) so the profile shows the work
            prof = cProfile.Profile()
            prof.enable()
            cli(argv)
            prof.disable()
            timings = json.load(open("xrefine.json"))["timings_s"]
        finally:
            os.chdir(cwd)
    print("\nphases (s):", ", ".join(f"{k} {v:.3f}" for k, v in timings.items()))
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
